// Shop categories. A shop's `category` is a code of one list (docs/categories.md, served
// as GET /api/v1/categories); the pages show its label in the page's language. The table
// is category-table.js, generated from the server's own.

import { CATEGORIES } from "./category-table.js";
import { getLang } from "./i18n.js";

const LABELS = new Map(CATEGORIES.map(([code, fr, en]) => [code, { fr, en }]));
const LAST = "other";

/** The label of `code` in the page's language; null for a value that is no code. */
export function categoryLabel(code) {
  const labels = LABELS.get(code);
  return labels ? labels[getLang()] ?? labels.en : null;
}

/**
 * How to show a category: its label, or a value that is no code as it came (a post
 * published before categories were codes, or kept on the device since), which is then
 * the shop's own text.
 */
export const categoryText = (value) => categoryLabel(value) ?? String(value);

/** [code, label] for each code, by label in the page's language, "other" last. */
export function categoryChoices() {
  const lang = getLang();
  return CATEGORIES.map(([code]) => [code, categoryLabel(code)])
    .sort(([a, la], [b, lb]) => (a === LAST) - (b === LAST) || la.localeCompare(lb, lang));
}
