/**
 * The widget's shadow tree: a launcher button and the panel. Static markup
 * only (nothing from attributes or messages is ever put in here as HTML:
 * titles, names and messages go in with textContent).
 */
export const TEMPLATE = `
<div class="root" part="root">
  <section class="panel" id="panel" aria-labelledby="title" hidden>
    <header class="header">
      <div class="heading">
        <h2 class="title" id="title"></h2>
        <p class="status" id="status" role="status" data-state="connecting"><span class="dot" aria-hidden="true"></span><span id="status-text">Connecting…</span></p>
      </div>
      <button class="icon-button" id="minimise" type="button" aria-label="Minimise chat" title="Minimise"><span class="icon-minimise" aria-hidden="true"></span></button>
      <button class="icon-button" id="close" type="button" aria-label="Close chat and leave the room" title="Close"><span class="icon-close" aria-hidden="true"></span></button>
    </header>
    <div class="people"><span id="people-title" class="people-title">Here now</span><ul id="presence" class="presence" aria-labelledby="people-title"></ul></div>
    <div class="scroller" id="scroller" tabindex="0" role="log" aria-label="Messages" aria-live="polite">
      <ol class="messages" id="messages"></ol>
    </div>
    <button class="new-messages" id="new-messages" type="button" hidden>New messages <span aria-hidden="true">↓</span></button>
    <p class="typing" id="typing" aria-live="polite"></p>
    <div class="notice" id="notice" role="alert" hidden><span id="notice-text"></span><button class="notice-button" id="retry" type="button" hidden>Try again</button></div>
    <form class="composer" id="composer" aria-label="Send a message">
      <textarea id="input" rows="1" maxlength="4000" placeholder="Write a message…" aria-label="Message (Enter to send, Shift+Enter for a new line)"></textarea>
      <button class="send" id="send" type="submit" aria-label="Send message">Send</button>
    </form>
  </section>
  <button class="launcher" id="launcher" type="button" aria-controls="panel" aria-expanded="false">
    <svg class="launcher-icon" viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 7 10zm5 0a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6zm5 0a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6z"/></svg>
    <span class="badge" id="badge" aria-hidden="true" hidden></span>
  </button>
</div>`;
