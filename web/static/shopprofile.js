// The console's "Your shop" form: name, category and address, the profile fields a shop
// changes itself (PATCH /api/v1/shops/{id}; its position only the operator moves). The
// category is a choice among the codes, shown by their labels in the page's language.

import { categoryChoices } from "./categories.js";

const FIELDS = ["name", "category", "address"];

export class ProfileForm {
  /** @param {{name: HTMLInputElement, category: HTMLSelectElement, address: HTMLInputElement}} inputs */
  constructor(inputs) {
    this.inputs = inputs;
    this.relabel();
  }

  /** The options, labelled in the page's language, keeping what is chosen. */
  relabel() {
    const select = this.inputs.category;
    const chosen = select.value;
    select.replaceChildren(...categoryChoices().map(([code, label]) => new Option(label, code)));
    if (chosen) select.value = chosen;
  }

  /** Show the shop's profile as it is on the server. */
  load(profile) {
    for (const field of FIELDS) this.inputs[field].value = String(profile?.[field] ?? "");
  }

  /** What differs from `profile`: the body of the PATCH ({} when nothing does). */
  changes(profile) {
    const out = {};
    for (const field of FIELDS) {
      const value = this.inputs[field].value.trim();
      if (value !== String(profile?.[field] ?? "")) out[field] = value;
    }
    return out;
  }
}
