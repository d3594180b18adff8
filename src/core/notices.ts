/**
 * What the domain has to tell the person running a command that no return value
 * carries: an operation a killed command left half-done, completed or undone by the
 * next one (instances/file-swap). The CLI shows each as a warning; with no listener
 * (a library caller, a test) they are dropped.
 */
type Listener = (text: string) => void;

let listener: Listener | undefined;

export function onNotice(next: Listener | undefined): void {
  listener = next;
}

export function notice(text: string): void {
  listener?.(text);
}
