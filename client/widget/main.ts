/**
 * /widget.js: defines `<rooms-chat>` (see rooms-chat.ts). Load it as a module
 * from the service: `<script type="module" src="https://chat.example.com/widget.js">`.
 */
import { RoomsChat } from "./rooms-chat.js";

if (!customElements.get("rooms-chat")) customElements.define("rooms-chat", RoomsChat);

export { RoomsChat };
export type { WidgetStatus } from "./rooms-chat.js";
