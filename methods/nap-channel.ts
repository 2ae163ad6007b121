import { CHANNEL_PARAMS } from "./channel-scores.js";
import { NAP_2021 } from "./citations.js";
import { compensateChannels, NAP_PARAMS, napSchedule, scoreChannels } from "./nap.js";
import type { PruningMethod } from "./types.js";

/**
 * NAP's structured mode (Zeng, Xiong, Urtasun, arXiv 2101.06608): whole output channels / neurons ranked by their
 * K-FAC OBS loss increase over all layers at once, removed through the channel groups, with the joint OBS update of
 * the producing layers' surviving outputs. The weight mode, the formulas and every choice are in methods/nap.ts,
 * which holds the code of both.
 */
export const napChannel: PruningMethod = {
  name: "nap-channel",
  summary: "NAP's structured mode: remove the channels/neurons with the smallest K-FAC OBS loss increase, one global ranking, capped per layer and step",
  paper: NAP_2021,
  params: {
    ...NAP_PARAMS,
    cap: { type: "number", default: 0.5, min: 0.01, max: 1, description: "a group loses at most this fraction of its live channels per step before any other group's capped ones (EigenDamage: 0.5); 1 = no cap" },
    min_keep: { ...CHANNEL_PARAMS.min_keep, default: 0 },
    round_to: CHANNEL_PARAMS.round_to,
    layers: CHANNEL_PARAMS.layers,
    residual: CHANNEL_PARAMS.residual,
    skip: CHANNEL_PARAMS.skip,
  },
  needs: { kfacFactors: true },
  granularity: "channel",
  distribution: () => "global",
  minDensity: (p) => Number(p.min_keep),
  roundTo: (p) => Number(p.round_to),
  schedule: napSchedule,
  score: scoreChannels,
  compensate: compensateChannels,
};
