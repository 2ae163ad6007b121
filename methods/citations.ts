/** Papers cited by more than one method. */
import type { Citation } from "./types.js";

export const HAN_2015: Citation = {
  authors: "Han, Pool, Tran, Dally",
  title: "Learning both Weights and Connections for Efficient Neural Networks",
  venue: "NeurIPS",
  year: 2015,
  url: "https://arxiv.org/abs/1506.02626",
};

export const BLALOCK_2020: Citation = {
  authors: "Blalock, Gonzalez Ortiz, Frankle, Guttag",
  title: "What is the State of Neural Network Pruning?",
  venue: "MLSys",
  year: 2020,
  url: "https://arxiv.org/abs/2003.03033",
};

/** NAP's weight and channel modes (methods/nap.ts). */
export const NAP_2021: Citation = {
  authors: "Zeng, Xiong, Urtasun",
  title: "Network Automatic Pruning: Start NAP and Take a Nap",
  venue: "arXiv",
  year: 2021,
  url: "https://arxiv.org/abs/2101.06608",
};

/** Optimal Brain Damage: obd's paper; the saliency OBS and NAP generalise. */
export const LECUN_1990: Citation = {
  authors: "LeCun, Denker, Solla",
  title: "Optimal Brain Damage",
  venue: "NeurIPS (NIPS 2)",
  year: 1990,
};

/** Optimal Brain Surgeon: obs's paper; its saliency and compensation update are also NAP's, under K-FAC. */
export const HASSIBI_STORK_1993: Citation = {
  authors: "Hassibi, Stork",
  title: "Second order derivatives for network pruning: Optimal Brain Surgeon",
  venue: "NeurIPS (NIPS 5)",
  year: 1993,
};
