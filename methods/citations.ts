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
