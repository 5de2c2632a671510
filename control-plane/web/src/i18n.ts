// Message bundles and language switching. Hebrew is right-to-left: the whole layout mirrors
// through the `dir` attribute and CSS logical properties.
import en from "./i18n/en.json";
import he from "./i18n/he.json";

export const bundles = { en, he } as const;
export type Lang = keyof typeof bundles;
export type MessageKey = keyof typeof en;

const STORAGE_KEY = "luach.lang";

export function initialLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "he") return saved;
  return navigator.language.toLowerCase().startsWith("en") ? "en" : "he";
}

let current: Lang = "he";

export function setLang(lang: Lang): void {
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === "he" ? "rtl" : "ltr";
}

export function lang(): Lang {
  return current;
}

/** Translates `key`, filling `{name}` placeholders from `vars`. */
export function t(key: MessageKey, vars: Record<string, string | number> = {}): string {
  const template: string = bundles[current][key] ?? bundles.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`));
}

/** Keys present in one bundle but not the other (must be empty). */
export function missingKeys(): { missingInHe: string[]; missingInEn: string[] } {
  const enKeys = new Set(Object.keys(bundles.en));
  const heKeys = new Set(Object.keys(bundles.he));
  return {
    missingInHe: [...enKeys].filter((k) => !heKeys.has(k)),
    missingInEn: [...heKeys].filter((k) => !enKeys.has(k)),
  };
}
