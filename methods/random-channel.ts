import type { PruningMethod } from "./types.js";
import { BLALOCK_2020 } from "./citations.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups } from "./channel-scores.js";

/**
 * Random channel pruning: every channel of the groups it may prune gets an i.i.d. uniform score, so the channels
 * removed are a uniform random subset of each group ("layer") or of all of them ("global"). The structured
 * counterpart of `random` (Blalock et al. 2020's control), and the floor every channel criterion must beat; Li et
 * al. 2017 (Figure 2) and Liu et al. 2019 ("Rethinking the Value of Network Pruning") compare against random filter
 * choices the same way. The same `layers` / `residual` / `skip` choices as the criteria it controls for, so a grid
 * compares them on the same groups.
 */
export const randomChannel: PruningMethod = {
  name: "random-channel",
  summary: "Remove a uniformly random subset of channels (structured control baseline)",
  paper: BLALOCK_2020,
  params: CHANNEL_PARAMS,
  needs: {},
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  score(ctx) {
    if (!ctx.groups) throw new Error("random-channel is a channel method: the engine gave it no channel groups");
    return new Map(eligibleGroups(ctx.groups, ctx.params).map((g) => [g.name, Float32Array.from({ length: g.size }, () => ctx.random())]));
  },
};
