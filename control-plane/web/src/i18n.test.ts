import { describe, expect, it } from "vitest";
import { bundles, missingKeys } from "./i18n";

describe("message bundles", () => {
  it("have exactly the same keys in Hebrew and English", () => {
    expect(missingKeys()).toEqual({ missingInHe: [], missingInEn: [] });
  });

  it("use the same placeholders in both languages", () => {
    const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(bundles.en) as (keyof typeof bundles.en)[]) {
      expect(placeholders(bundles.he[key]), key).toEqual(placeholders(bundles.en[key]));
    }
  });

  it("have no empty messages", () => {
    for (const bundle of Object.values(bundles)) {
      for (const [key, value] of Object.entries(bundle)) expect(value.trim(), key).not.toBe("");
    }
  });
});
