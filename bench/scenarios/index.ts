/**
 * Every scenario the runner knows, in the order it runs them. A new one is
 * a module next to this file that exports a `Scenario`, added here.
 *
 * Connections run first, while every server process is fresh, so the memory
 * they measure is the sockets' and not what earlier scenarios left behind.
 */
import type { Scenario } from "../lib/scenario.ts";
import { connections } from "./connections.ts";
import { longPollWake } from "./long-poll-wake.ts";
import { pusherFanout } from "./pusher-fanout.ts";
import { sseDelivery } from "./sse-delivery.ts";
import { throughput } from "./throughput.ts";
import { websocketFanout } from "./websocket-fanout.ts";

export const SCENARIOS: Scenario<any>[] = [
  connections(),
  websocketFanout(1000, 10, 3, false),
  websocketFanout(1000, 100, 2, true),
  throughput(),
  longPollWake(50, true),
  longPollWake(200, false),
  sseDelivery(),
  pusherFanout(500),
];
