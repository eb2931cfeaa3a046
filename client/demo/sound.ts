/**
 * A short two-note chime for new messages while the tab is hidden. Browsers
 * only let a page make sound after the user interacted with it, so the audio
 * context is created on the first click or key press.
 */
export class Chime {
  #context?: AudioContext;

  constructor() {
    const unlock = () => {
      try {
        this.#context ??= new AudioContext();
        void this.#context.resume();
      } catch {
        // no Web Audio: stay silent
      }
    };
    addEventListener("pointerdown", unlock, { once: true });
    addEventListener("keydown", unlock, { once: true });
  }

  play(): void {
    const context = this.#context;
    if (!context || context.state !== "running") return;
    const start = context.currentTime;
    for (const [i, frequency] of [880, 1318.5].entries()) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      const at = start + i * 0.12;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.32);
    }
  }
}
