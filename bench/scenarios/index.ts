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
import { notifyRate } from "./notify-rate.ts";
import { pusherFanout } from "./pusher-fanout.ts";
import { sseDelivery } from "./sse-delivery.ts";
import { throughput } from "./throughput.ts";
import { websocketFanout } from "./websocket-fanout.ts";

export const SCENARIOS: Scenario<any>[] = [
  connections(),
  websocketFanout({ sockets: 1000, rate: 10, runs: 3, inQuick: false, saturates: false }),
  websocketFanout({ sockets: 1000, rate: 100, runs: 2, inQuick: true, saturates: true }),
  websocketFanout({ sockets: 1000, rate: 10, runs: 3, inQuick: false, saturates: false, batch: true }),
  websocketFanout({ sockets: 1000, rate: 100, runs: 2, inQuick: true, saturates: true, batch: true }),
  notifyRate(),
  notifyRate(100),
  throughput(),
  longPollWake(50, true),
  longPollWake(200, false),
  sseDelivery(),
  pusherFanout(500),
];
