/** Papers cited by more than one method. */
import type { Citation } from "./types.js";

export const HAN_2015: Citation = {
  authors: "Han, Pool, Tran, Dally",
  title: "Learning both Weights and Connections for Efficient Neural Networks",
  venue: "NeurIPS",
  year: 2015,
  url: "https://arxiv.org/abs/1506.02626",
};
