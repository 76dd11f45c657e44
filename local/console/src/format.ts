/** How times read on the page: clock times in the browser's zone, ages and durations in words. */

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

/** `HH:MM:SS`. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `2026-11-25 16:40:01`, for a `title` or `datetime`. */
export function fullTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clockTime(ms)}`;
}

/** `45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`. */
export function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return m % 60 === 0 ? `${hours} h` : `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** `5 s ago` or `in 58 min`, from `now`. */
export function relative(ms: number, now: number): string {
  return ms <= now ? `${duration(now - ms)} ago` : `in ${duration(ms - now)}`;
}
