/**
 * Every scenario the runner knows, in the order it runs them. A new one
 * (WebSocket fan-out, throughput, SSE, connections, D1 batching …) is a
 * module next to this file that exports a `Scenario`, added here.
 */
import type { Scenario } from "../lib/scenario.ts";
import { longPollWake } from "./long-poll-wake.ts";
import { websocketFanout } from "./websocket-fanout.ts";

export const SCENARIOS: Scenario<any>[] = [longPollWake(50, true), longPollWake(200, false), websocketFanout(100)];
