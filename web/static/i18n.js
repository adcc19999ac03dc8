// French and English strings. Numbers, prices, times and "3 min ago" come from Intl,
// so only sentences live here. Each key holds [French, English]: a missing translation
// shows up side by side with the other one.
const STRINGS = {
  title: ["Streetfeed — autour de vous", "Streetfeed — around you"],
  tagline: ["Ce qui se passe autour de vous, maintenant", "What's happening around you, right now"],
  radius: ["Rayon", "Radius"],
  switch_to: ["EN", "FR"],
  // Starts with the button's visible text ("EN"/"FR"), as WCAG 2.5.3 asks of a label.
  switch_label: ["EN, Switch to English", "FR, passer en français"],
  feed_heading: ["Annonces à proximité", "Posts nearby"],
  status_connecting: ["Connexion…", "Connecting…"],
  status_live: ["En direct", "Live"],
  status_reconnecting: ["Reconnexion…", "Reconnecting…"],
  status_offline: ["Hors ligne", "Offline"],
  status_not_live: ["Pas en direct", "Not live"],
  not_live: ["Pas en direct depuis {time}, dernières annonces affichées",
    "Not live since {time}, showing the last posts"],
  locating: ["Recherche de votre position…", "Finding your position…"],
  demo_street: [
    "Position indisponible — voici la rue de démonstration",
    "Position unavailable — showing the demo street",
  ],
  loading: ["Recherche des nouveautés autour de vous…", "Looking for what's new around you…"],
  empty: [
    "Rien de neuf dans ce rayon pour le moment. Essayez un rayon plus grand.",
    "Nothing new within this radius right now. Try a wider radius.",
  ],
  kind_new_arrival: ["Nouveauté", "New arrival"],
  kind_flash_offer: ["Offre flash", "Flash offer"],
  kind_opening_change: ["Horaires", "Opening hours"],
  opening_open_now: ["Ouvert maintenant", "Open now"],
  opening_closed_now: ["Fermé pour le moment", "Closed right now"],
  opening_open_late: ["Ouvert tard", "Open late"],
  opening_closed_exceptionally: ["Fermeture exceptionnelle", "Exceptionally closed"],
  // "Open now" / "Closed right now" on a post that does not govern now (a later one
  // closed the shop until 14:00): what it says, without the "now" the shop's line denies.
  opening_open: ["Ouvert", "Open"],
  opening_closed: ["Fermé", "Closed"],
  until: ["jusqu'à {time}", "until {time}"],
  walk: ["{n} min à pied", "{n} min walk"],
  ends_in: ["Encore {t}", "{t} left"],
  ended: ["Terminé", "Ended"],
  discount: ["−{n} %", "−{n}%"],
  announce: ["Nouveau : {title} — {shop}, à {dist}", "New: {title} — {shop}, {dist} away"],
  // Passer-by: follow, filters, map, opening state, offline
  shop_open: ["Ouvert", "Open now"],
  shop_closed: ["Fermé", "Closed"],
  closes_at: ["ferme à {time}", "closes at {time}"],
  opens_at: ["ouvre à {time}", "opens at {time}"],
  opens_tomorrow: ["ouvre demain à {time}", "opens tomorrow at {time}"],
  follow_shop: ["Suivre {shop}", "Follow {shop}"],
  unfollow_shop: ["Ne plus suivre {shop}", "Unfollow {shop}"],
  followed: ["Suivi", "Followed"],
  now_following: ["Vous suivez {shop}", "You follow {shop}"],
  not_following: ["Vous ne suivez plus {shop}", "You no longer follow {shop}"],
  filters_heading: ["Filtres", "Filters"],
  filter_kind: ["Type d'annonce", "Kind of post"],
  filter_all: ["Tout", "All"],
  filter_new_arrival: ["Nouveautés", "New arrivals"],
  filter_flash_offer: ["Offres", "Offers"],
  filter_opening_change: ["Horaires", "Hours"],
  filter_followed: ["Suivis", "Followed"],
  filter_category: ["Catégorie", "Category"],
  filter_all_categories: ["Toutes", "All"],
  empty_filtered: [
    "Aucune annonce ne correspond à ces filtres.",
    "No post matches these filters.",
  ],
  show_map: ["Carte", "Map"],
  show_list: ["Liste", "List"],
  map_heading: ["Carte des annonces", "Map of the posts"],
  tiles_failed: [
    "Fond de carte indisponible : les boutiques restent à leur place.",
    "Map background unavailable: shops are still in the right place.",
  ],
  map_failed: ["La carte n'a pas pu se charger. La liste reste à jour.",
    "The map could not load. The list stays up to date."],
  seen_at: ["vu à {time}", "seen at {time}"],
  empty_offline: [
    "Hors ligne, et aucune annonce gardée sur cet appareil. Elles reviendront avec le réseau.",
    "Offline, and no post kept on this device. They will come back with the network.",
  ],
  offline_notice: [
    "Hors ligne : les annonces affichées peuvent avoir changé. Retour en direct dès que le réseau revient.",
    "Offline: the posts shown may have changed. Live again as soon as the network is back.",
  ],
  // Shop console
  console_title: ["Streetfeed — console commerçant", "Streetfeed — shop console"],
  console_brand: ["Console commerçant", "Shop console"],
  skip_to_content: ["Aller au contenu", "Skip to content"],
  signout: ["Se déconnecter", "Sign out"],
  signin_heading: ["Connexion commerçant", "Shopkeeper sign-in"],
  signin_help: [
    "Entrez l'identifiant de votre boutique et le jeton reçu à l'inscription. " +
      "Le jeton n'est pas gardé par cette page.",
    "Enter your shop id and the token you received when signing up. " +
      "This page does not keep the token.",
  ],
  shop_id: ["Identifiant de la boutique", "Shop id"],
  token: ["Jeton", "Token"],
  signin: ["Se connecter", "Sign in"],
  signing_in: ["Connexion…", "Signing in…"],
  signed_out: ["Vous êtes déconnecté.", "You are signed out."],
  live_heading: ["En ce moment", "Right now"],
  watching_radius: ["Rayon", "Within"],
  watching_one: ["personne regarde le fil à moins de {r} en ce moment",
    "person watching within {r} right now"],
  watching_other: ["personnes regardent le fil à moins de {r} en ce moment",
    "people watching within {r} right now"],
  fewer_than: ["moins de {n}", "fewer than {n}"],
  compose_heading: ["Publier une annonce", "Post something"],
  templates: ["Modèles rapides", "Quick templates"],
  tpl_arrival: ["Arrivage", "Just in"],
  tpl_discount: ["-20 % jusqu'à la fermeture", "-20 % until closing"],
  tpl_lunch: ["Fermé pour le déjeuner, retour à 14h", "Closed for lunch, back at 14:00"],
  kind_legend: ["Type d'annonce", "Kind of post"],
  post_title: ["Titre", "Title"],
  post_text: ["Texte", "Text"],
  optional: ["(facultatif)", "(optional)"],
  price: ["Prix (€)", "Price (€)"],
  tags: ["Mots-clés", "Tags"],
  tags_help: ["(séparés par des virgules, 8 au plus)", "(comma separated, up to 8)"],
  ends_at: ["Fin de l'offre", "Offer ends at"],
  discount_label: ["Remise (%)", "Discount (%)"],
  ends_quick: ["Fins rapides", "Quick end times"],
  in_30_min: ["dans 30 min", "in 30 min"],
  in_1_h: ["dans 1 h", "in 1 h"],
  in_2_h: ["dans 2 h", "in 2 h"],
  at_closing: ["à la fermeture", "at closing"],
  status_label: ["Situation", "Status"],
  until_label: ["Jusqu'à", "Until"],
  // "Closed right now" without a time lasts the day (a cold user read it as a moment).
  until_hint: ["Sans heure : pour le reste de la journée.", "Without a time: for the rest of the day."],
  publish: ["Publier", "Publish"],
  publishing: ["Publication…", "Publishing…"],
  published: ["Publié ! L'annonce est en ligne dans un instant.",
    "Published! The post goes live in a moment."],
  preview_heading: ["Aperçu", "Preview"],
  preview_help: ["Tel que le voit un passant à 80 m", "As a passer-by 80 m away sees it"],
  preview_title: ["Votre titre ici", "Your title here"],
  own_posts_heading: ["Vos annonces en ligne", "Your live posts"],
  own_posts_empty: ["Aucune annonce en ligne pour le moment.", "No live post right now."],
  phones_one: ["{n} téléphone", "{n} phone"],
  phones_other: ["{n} téléphones", "{n} phones"],
  screens_one: ["{n} écran", "{n} screen"],
  screens_other: ["{n} écrans", "{n} screens"],
  reach: ["Reçue en direct par {phones} et {screens}", "Pushed live to {phones} and {screens}"],
  auto_post: ["Publiée automatiquement d'après vos horaires", "Posted automatically from your hours"],
  edit: ["Modifier", "Edit"],
  edit_label: ["Modifier « {title} »", "Edit “{title}”"],
  withdraw: ["Retirer", "Withdraw"],
  withdraw_label: ["Retirer « {title} »", "Withdraw “{title}”"],
  withdraw_confirm: ["Confirmer le retrait", "Confirm withdrawal"],
  withdrawn: ["Annonce « {title} » retirée.", "Post “{title}” withdrawn."],
  save: ["Enregistrer", "Save"],
  cancel: ["Annuler", "Cancel"],
  edit_sent: ["Modification envoyée.", "Change sent."],
  hours_heading: ["Horaires d'ouverture", "Opening hours"],
  hours_help: [
    "Pour chaque jour, une ou plusieurs plages. Sans plage, la boutique est fermée ce jour-là. " +
      "Une plage qui ferme avant son ouverture finit après minuit.",
    "For each day, one or more ranges. No range: closed that day. " +
      "A range that closes before it opens ends after midnight.",
  ],
  opens: ["Ouverture", "Opens"],
  closes: ["Fermeture", "Closes"],
  add_range: ["+ Plage", "+ Range"],
  add_range_label: ["Ajouter une plage le {day}", "Add a range on {day}"],
  remove_range_label: ["Supprimer la plage {n} du {day}", "Remove range {n} on {day}"],
  closed_day: ["Fermé", "Closed"],
  copy_prev: ["Comme la veille", "Same as day before"],
  copy_prev_label: ["{day} : mêmes horaires que la veille", "{day}: same hours as the day before"],
  exceptions_heading: ["Fermetures et horaires exceptionnels", "Exceptional closures and hours"],
  add_exception: ["Ajouter une date", "Add a date"],
  exception_date: ["Date", "Date"],
  exception_closed: ["Fermé toute la journée", "Closed all day"],
  exception_note: ["Note (facultatif)", "Note (optional)"],
  remove: ["Supprimer", "Remove"],
  remove_exception_label: ["Supprimer la date {n}", "Remove date {n}"],
  no_exceptions: ["Aucune date exceptionnelle.", "No exceptional date."],
  save_hours: ["Enregistrer les horaires", "Save opening hours"],
  hours_saved: ["Horaires enregistrés.", "Opening hours saved."],
  hours_incomplete: ["{day} : indiquez l'ouverture et la fermeture de chaque plage.",
    "{day}: give both the opening and closing time of each range."],
  exception_incomplete: ["Date exceptionnelle {n} : indiquez la date et, si ouvert, les heures.",
    "Exceptional date {n}: give the date and, if open, the hours."],
  links_heading: ["Votre vitrine", "Your shop window"],
  open_screen: ["Ouvrir l'écran de la boutique", "Open the in-shop screen"],
  open_feed: ["Voir le fil de la rue autour de la boutique", "See the street feed around the shop"],
  qr_alt: ["QR code vers le fil en direct autour de {shop}", "QR code to the live feed around {shop}"],
  qr_help: [
    "Imprimez ce QR code pour votre vitrine : il ouvre le fil en direct autour de la boutique.",
    "Print this QR code for your window: it opens the live feed around your shop.",
  ],
  need_credentials: ["Indiquez l'identifiant et le jeton.", "Enter the shop id and the token."],
  need_title: ["Indiquez un titre.", "Enter a title."],
  need_ends_at: ["Indiquez l'heure de fin de l'offre.", "Enter when the offer ends."],
  bad_discount: ["La remise va de 1 à 99 %.", "The discount goes from 1 to 99%."],
  bad_price: ["Prix invalide.", "Invalid price."],
  too_many_tags: ["8 mots-clés au plus.", "At most 8 tags."],
  err_network: ["Serveur injoignable. Vérifiez la connexion et réessayez.",
    "Cannot reach the server. Check the connection and try again."],
  err_invalid_token: ["Identifiant ou jeton incorrect.", "Wrong shop id or token."],
  err_unknown_shop: ["Boutique inconnue : vérifiez l'identifiant.", "Unknown shop: check the id."],
  err_missing_token: ["Veuillez vous connecter.", "Please sign in."],
  err_not_signed_in: ["Votre session a expiré : reconnectez-vous.",
    "Your session has ended: please sign in again."],
  err_invalid_sign_in: ["Indiquez l'identifiant et le jeton.", "Enter the shop id and the token."],
  err_invalid_post: ["Annonce refusée : un champ n'est pas valable.",
    "Post refused: a field is not valid."],
  err_invalid_title: ["Le titre ne peut pas être vide.", "The title cannot be blank."],
  err_markup_not_allowed: ["Le HTML et les scripts ne sont pas autorisés dans une annonce.",
    "HTML and scripts are not allowed in a post."],
  err_too_many_links: ["Trop de liens dans l'annonce.", "Too many links in the post."],
  err_control_characters: ["Le texte contient des caractères invisibles non autorisés.",
    "The text contains invisible characters that are not allowed."],
  err_content_rejected: ["Ce contenu n'est pas accepté.", "This content is not accepted."],
  err_bidi_control: ["Le texte contient des marques de sens d'écriture invisibles (souvent collées avec un numéro ou un nom copié) : retapez ce passage au clavier.",
    "The text holds invisible writing-direction marks (often pasted with a copied number or name): type that part again."],
  err_blank_text: ["Un champ ne contient que des espaces ou des caractères invisibles.",
    "A field holds only blanks or invisible characters."],
  err_ends_at_in_past: ["La fin de l'offre doit être dans le futur.",
    "The offer must end in the future."],
  err_ends_at_too_far: ["Une offre flash dure au plus 24 heures.",
    "A flash offer lasts at most 24 hours."],
  err_until_in_past: ["L'heure « jusqu'à » doit être dans le futur.",
    "The “until” time must be in the future."],
  err_until_too_far: ["L'heure « jusqu'à » doit être dans les 7 prochains jours.",
    "The “until” time must be within the next 7 days."],
  err_rate_limited: ["Trop de publications d'un coup : réessayez dans une minute.",
    "Too many posts at once: try again in a minute."],
  err_unknown_post: ["Cette annonce n'est plus en ligne.", "This post is no longer live."],
  err_empty_patch: ["Rien à modifier.", "Nothing to change."],
  err_invalid_hours: ["Horaires refusés : vérifiez les plages et le fuseau horaire.",
    "Hours refused: check the ranges and the time zone."],
  err_cross_origin: ["Requête refusée : elle ne vient pas de ce site.",
    "Request refused: it does not come from this site."],
  err_redis_unavailable: ["Service momentanément indisponible, réessayez dans quelques secondes.",
    "Service briefly unavailable, try again in a few seconds."],
  err_payload_too_large: ["Annonce trop longue.", "Post too long."],
  err_offline: ["Hors ligne : réessayez quand le réseau revient.",
    "Offline: try again when the network is back."],
  err_generic: ["Une erreur est survenue. Réessayez dans un instant.",
    "Something went wrong. Try again in a moment."],
  // In-shop screen
  screen_title: ["Streetfeed — écran de la boutique", "Streetfeed — in-shop screen"],
  screen_own: ["Chez nous", "From us"],
  screen_neighbours: ["Dans la rue", "Around the street"],
  screen_qr: ["Scannez pour suivre la rue en direct", "Scan to follow the street live"],
  screen_empty_own: ["Pas d'annonce en cours.", "No post right now."],
  screen_empty_neighbours: ["Rien de neuf dans la rue pour le moment.",
    "Nothing new around the street right now."],
  screen_loading: ["Chargement…", "Loading…"],
  screen_unknown_shop: ["Boutique introuvable : vérifiez l'adresse de cet écran.",
    "Shop not found: check this screen's address."],
  screen_unknown_title: ["Streetfeed — écran inconnu", "Streetfeed — unknown screen"],
  screen_unknown_heading: ["Aucune boutique ici", "No shop here"],
  screen_unknown_id: ["Identifiant demandé : « {id} »", "Id asked for: “{id}”"],
  screen_unknown_help: [
    "L'adresse de cet écran ne correspond à aucune boutique, ou la boutique est désactivée. " +
      "Vérifiez l'adresse dans la console commerçant (« Ouvrir l'écran de la boutique »).",
    "This screen's address names no shop, or the shop is switched off. " +
      "Check the address in the shop console (“Open the in-shop screen”).",
  ],
  screen_page: ["{i} sur {n}", "{i} of {n}"],
  stale: ["Connexion perdue depuis {d} — affichage des dernières infos",
    "Connection lost for {d} — showing the latest information"],
  // Sign-in links (issue 14): the console's sign-in page and "Sign in on another device"
  signin_link_help: [
    "Ouvrez le lien de connexion que vous avez reçu, ou scannez son QR code : " +
      "il vous connecte directement.",
    "Open the sign-in link you were given, or scan its QR code: it signs you in directly.",
  ],
  signin_with_token: ["Se connecter avec un jeton", "Sign in with a token"],
  err_signin_link_used: [
    "Ce lien de connexion a déjà servi (il ne marche qu'une fois). " +
      "Demandez-en un nouveau à qui vous l'a donné.",
    "This sign-in link has already been used (it works only once). " +
      "Ask whoever gave it to you for a new one.",
  ],
  err_signin_link_invalid: [
    "Ce lien de connexion n'est pas valable : expiré (24 h), remplacé ou incomplet. " +
      "Demandez-en un nouveau à qui vous l'a donné.",
    "This sign-in link is not valid: expired (24 h), replaced or cut short. " +
      "Ask whoever gave it to you for a new one.",
  ],
  err_shop_disabled: ["Cette boutique est désactivée : contactez l'exploitant du service.",
    "This shop is disabled: contact the service's operator."],
  device_heading: ["Se connecter sur un autre appareil", "Sign in on another device"],
  device_help: [
    "Créez un lien de connexion et scannez son QR code avec votre téléphone : " +
      "il y ouvre cette console.",
    "Make a sign-in link and scan its QR code with your phone: it opens this console there.",
  ],
  device_link_make: ["Créer un lien de connexion", "Make a sign-in link"],
  device_link_qr_alt: ["QR code du lien de connexion", "QR code of the sign-in link"],
  device_link_expires: ["Marche une seule fois, jusqu'au {when}.", "Works once, until {when}."],
  device_link_private: [
    "Quiconque a ce lien peut se connecter à votre boutique tant qu'il n'a pas servi : " +
      "ne le partagez pas publiquement.",
    "Whoever has this link can sign in as your shop until it is used: " +
      "do not share it publicly.",
  ],
  // Shop categories (issue 14): the console's "Your shop" form (labels: categories.js)
  profile_heading: ["Votre boutique", "Your shop"],
  profile_help: ["Le nom, la catégorie et l'adresse figurent sur chacune de vos annonces.",
    "Name, category and address show on each of your posts."],
  profile_name: ["Nom de la boutique", "Shop name"],
  profile_category: ["Catégorie", "Category"],
  profile_address: ["Adresse", "Address"],
  save_profile: ["Enregistrer", "Save"],
  profile_saved: ["Boutique mise à jour.", "Shop updated."],
  need_shop_name: ["Donnez un nom à la boutique.", "Give the shop a name."],
  err_unknown_category: ["Catégorie inconnue : choisissez-en une dans la liste.",
    "Unknown category: choose one from the list."],
  // Opening truth and the reader's language (issue 14): automatic opening posts, and
  // every error code the server can send (rules/errors.py ERROR_CODES, checked by
  // tests/test_error_codes.py)
  auto_open: ["Ouvert", "Open"],
  auto_open_until: ["Ouvert jusqu'à {time}", "Open until {time}"],
  auto_closed: ["Fermé", "Closed"],
  auto_closed_reopens_at: ["Fermé, réouverture à {time}", "Closed, reopens at {time}"],
  auto_closed_reopens_tomorrow: ["Fermé, réouverture demain à {time}",
    "Closed, reopens tomorrow at {time}"],
  auto_closed_reopens_on: ["Fermé, réouverture {day} à {time}", "Closed, reopens {day} at {time}"],
  err_bad_request: ["Requête refusée par le serveur.", "The server refused the request."],
  err_invalid_input: ["Une valeur envoyée n'est pas valable.", "A value sent is not valid."],
  err_unauthorized: ["Accès refusé : connectez-vous.", "Access refused: please sign in."],
  err_not_found: ["Introuvable.", "Not found."],
  err_conflict: ["Conflit avec une modification en cours : réessayez.",
    "Conflicts with another change: try again."],
  err_method_not_allowed: ["Opération non permise ici.", "Operation not allowed here."],
  err_http_error: ["Le serveur n'a pas pu répondre. Réessayez.",
    "The server could not answer. Try again."],
  err_unsupported_media_type: ["Format de données non accepté.", "Data format not accepted."],
  err_malformed_json: ["Données illisibles pour le serveur.", "The server could not read the data."],
  err_duplicate_key: ["Un champ est envoyé deux fois.", "A field is sent twice."],
  err_invalid_idempotency_key: ["Identifiant de requête non valable.",
    "Invalid request identifier."],
  err_idempotency_key_reused: ["Cette publication a déjà été envoyée avec un autre contenu.",
    "This post was already sent with other content."],
  err_not_durable: ["Pas encore enregistré en sécurité : réessayez dans un instant.",
    "Not safely stored yet: try again in a moment."],
  err_invalid_shop: ["Informations de la boutique non valables.", "Invalid shop details."],
  err_outside_regions: ["Cette position est hors de la zone couverte.",
    "This position is outside the area served."],
  err_region_change: ["Une boutique ne peut pas changer de zone.",
    "A shop cannot move to another area."],
  err_position_locked: ["La position de la boutique ne se change que par l'exploitant du service.",
    "The shop's position is changed by the service's operator only."],
  err_invalid_query: ["Paramètres de recherche non valables.", "Invalid search parameters."],
  err_presence_unavailable: ["Chiffres de fréquentation momentanément indisponibles.",
    "Audience figures unavailable for now."],
  err_server_busy: ["Serveur très sollicité : réessayez dans un instant.",
    "Server busy: try again in a moment."],
  err_too_many_connections: ["Trop de connexions ouvertes depuis cet appareil ou ce réseau.",
    "Too many connections open from this device or network."],
  err_headers_too_large: ["Requête trop volumineuse.", "Request too large."],
  err_invalid_message: ["Message non compris par le fil.", "Message not understood by the feed."],
  err_invalid_subscription: ["Position ou rayon non valable pour le fil.",
    "Invalid position or radius for the feed."],
  err_origin_not_allowed: ["Ce site n'a pas accès au fil en direct.",
    "This site may not open the live feed."],
  err_feed_unavailable: ["Le fil en direct n'est pas servi ici.",
    "The live feed is not served here."],
  err_too_many_moves: ["Position mise à jour trop souvent : le fil reprend dans un instant.",
    "Position updated too often: the feed resumes in a moment."],
  err_binary_not_supported: ["Message non pris en charge par le fil.",
    "Message not supported by the feed."],
  // Passer-by page (issue 14): new posts out of view, compact controls, map clusters,
  // position asked on a tap
  new_nearby_one: ["{n} nouveauté à proximité", "{n} new nearby"],
  new_nearby_other: ["{n} nouveautés à proximité", "{n} new nearby"],
  filters_show: ["Filtres", "Filters"],
  filters_active_one: ["{n} filtre actif", "{n} filter on"],
  filters_active_other: ["{n} filtres actifs", "{n} filters on"],
  map_cluster: ["{n} boutiques ici : toucher pour zoomer", "{n} shops here: tap to zoom in"],
  locate_use: ["Utiliser ma position", "Use my position"],
  locate_demo: ["Ici : la rue de démonstration", "Showing the demo street"],
  locate_refused: [
    "Position refusée : autorisez-la dans les réglages du navigateur. Voici la rue de démonstration.",
    "Position refused: allow it in your browser's settings. Showing the demo street.",
  ],
  // Shop console: "at closing" told honestly (issue 14)
  closing_no_hours: ["« À la fermeture » : indiquez d'abord vos horaires d'ouverture.",
    "“At closing”: set your opening hours first."],
  closing_none_today: ["« À la fermeture » : pas de fermeture prévue aujourd'hui, choisissez une heure.",
    "“At closing”: no closing time today, pick a time."],
  // Shop console: a post's reach under 5 is "fewer than 5" (issue 14, reach privacy)
  phones_fewer: ["moins de {n} téléphones", "fewer than {n} phones"],
  screens_fewer: ["moins de {n} écrans", "fewer than {n} screens"],
  // Hardening (issue 14): refusals that used to be plain text or silently accepted
  err_invalid_websocket_handshake: ["Connexion au fil en direct refusée : requête non valable.",
    "Live feed connection refused: invalid request."],
  err_unsupported_websocket_version: ["Navigateur trop ancien pour le fil en direct.",
    "This browser is too old for the live feed."],
  err_duplicate_exception_date: ["Deux exceptions pour la même date : n'en gardez qu'une.",
    "Two exceptions for the same date: keep only one."],
  // Shop console: what a post's reach counts (issue 14, console fixes)
  reach_help: [
    "Le nombre de téléphones et d'écrans ouverts tout près qui ont reçu l'annonce à l'instant de sa publication. Ceux qui ouvrent la page ensuite ne sont pas comptés. Sous 5, « moins de 5 ».",
    "How many phones and screens open nearby received the post the moment it went out. People who open the page later are not counted. Under 5: “fewer than 5”.",
  ],
  // Passer-by page and in-shop screen, a cold try (issue 14): plurals on map pins
  map_pin_one: ["{shop} : {n} annonce", "{shop}: {n} post"],
  map_pin_other: ["{shop} : {n} annonces", "{shop}: {n} posts"],
  // Photos (issue 15): refusals of an uploaded photo (rules/images.py)
  err_media_too_large: ["Photo trop lourde : 10 Mo au plus.", "Photo too large: 10 MB at most."],
  err_unsupported_image_type: ["Ce fichier n'est pas une photo acceptée : JPEG, PNG, WebP ou HEIC.",
    "This file is not an accepted photo: JPEG, PNG, WebP or HEIC."],
  err_image_type_mismatch: ["Le fichier n'est pas du type d'image annoncé.",
    "The file is not the type of image it claims to be."],
  err_undecodable_image: ["Photo illisible ou incomplète.", "The photo is unreadable or incomplete."],
  err_unsupported_aspect_ratio: ["Photo trop allongée : le grand côté fait au plus 4 fois le petit.",
    "Photo too elongated: its long side is at most 4 times its short side."],
  err_too_many_pixels: ["Photo trop grande : 40 mégapixels au plus.",
    "Photo too big: 40 megapixels at most."],
  err_unknown_media: ["Cette photo n'est plus disponible : ajoutez-la à nouveau.",
    "This photo is no longer available: add it again."],
  err_media_quota_exceeded: ["Trop de photos gardées pour la boutique : retirez des annonces ou attendez qu'elles expirent.",
    "Too many photos kept for the shop: withdraw posts or wait for them to expire."],
  err_polyglot_image: ["Ce fichier cache autre chose qu'une photo : enregistrez la photo à nouveau depuis l'appareil ou la galerie.",
    "This file hides something other than a photo: save the photo again from the camera or gallery."],
  // Photos in an S3-compatible bucket (issue 15): the bucket cannot be reached
  err_media_unavailable: ["Photos momentanément indisponibles, réessayez dans quelques secondes.",
    "Photos briefly unavailable, try again in a few seconds."],
  // Photos (issue 15): a card's strip of several photos
  photos_n: ["{n} photos", "{n} photos"],
  // Producers (issue 16): refusals of the producer API (services/producers.py)
  err_invalid_producer: ["Producteur incomplet : un nom et un lieu (60 caractères au plus) et une position.",
    "Incomplete producer: a name and a place (60 characters at most) and a position."],
  err_unknown_producer: ["Ce producteur n'est pas (ou plus) lié à la boutique : 3 producteurs au plus par annonce.",
    "This producer is not (or no longer) linked to the shop: 3 producers at most per post."],
  err_too_many_producers: ["La boutique a déjà 50 producteurs : retirez-en un d'abord.",
    "The shop already has 50 producers: remove one first."],
  // Photos in the console (issue 15)
  photos_legend: ["Photos", "Photos"],
  photos_help: ["La première photo est celle que l'on voit d'abord.",
    "The first photo is the one people see first."],
  photo_camera: ["Prendre une photo", "Take a photo"],
  photo_gallery: ["Choisir dans la galerie", "Choose from the gallery"],
  photo_uploading: ["Envoi… {pct} %", "Uploading… {pct}%"],
  photo_processing: ["Préparation…", "Processing…"],
  photo_ready: ["Prête", "Ready"],
  photo_retry: ["Réessayer", "Retry"],
  photo_retry_label: ["Réessayer d'envoyer la photo {n}", "Retry uploading photo {n}"],
  photo_progress_label: ["Envoi de la photo {n}", "Uploading photo {n}"],
  photo_left_label: ["Mettre la photo {n} avant", "Move photo {n} earlier"],
  photo_right_label: ["Mettre la photo {n} après", "Move photo {n} later"],
  photo_remove_label: ["Retirer la photo {n}", "Remove photo {n}"],
  photo_moved: ["Photo déplacée en position {n}", "Photo moved to position {n}"],
  photo_removed: ["Photo retirée", "Photo removed"],
  photo_alt_more: ["{title}, photo {n}", "{title}, photo {n}"],
  photos_too_many: ["{n} photos au plus par annonce : les autres n'ont pas été ajoutées.",
    "{n} photos at most per post: the others were not added."],
  photos_wait: ["Publication possible dès que les photos sont envoyées…",
    "You can publish as soon as the photos are uploaded…"],
  photo_err_rate_limited: ["Trop de photos envoyées cette heure-ci : réessayez plus tard.",
    "Too many photos uploaded this hour: try again later."],
  photo_duplicate: ["Cette photo est déjà dans l'annonce.", "This photo is already in the post."],
  // Producers on the faces (issue 16): badges on cards, the producer's page, the "Local"
  // filter, the in-shop screen
  producers_label: ["D'où ça vient", "Where it comes from"],
  producer_title: ["Producteur à {place}, à {km} de la boutique",
    "Producer in {place}, {km} from the shop"],
  filter_local: ["Local", "Local"],
  filter_local_help: ["Seulement les annonces qui nomment un producteur proche de la boutique",
    "Only posts naming a producer near the shop"],
  empty_local: [
    "Aucune annonce de producteur local dans ce rayon pour le moment. Essayez un rayon plus grand.",
    "No post from a local producer within this radius right now. Try a wider radius.",
  ],
  producer_back: ["Retour au fil", "Back to the feed"],
  producer_kicker: ["Producteur", "Producer"],
  producer_loading: ["Chargement…", "Loading…"],
  producer_gone: ["Ce producteur n'est plus proposé par aucune boutique.",
    "No shop sells this producer any more."],
  producer_unknown: ["Producteur inconnu, ou proposé par aucune boutique.",
    "Unknown producer, or sold by no shop."],
  producer_retry: ["Réessayer", "Try again"],
  producer_failed: ["Page du producteur indisponible pour le moment. Réessayez dans un instant.",
    "The producer's page is unavailable right now. Try again in a moment."],
  producer_from_here: ["à {dist} d'ici", "{dist} from here"],
  producer_shops_one: ["Vendu dans {n} boutique", "Sold in {n} shop"],
  producer_shops_other: ["Vendu dans {n} boutiques", "Sold in {n} shops"],
  producer_no_post: ["Pas d'annonce en ce moment.", "No post right now."],
  // Names (issue 16, producers fix): refusals of a shop's or a producer's name
  // (rules/moderation.py check_name)
  err_stacked_marks: ["Trop d'accents sur une même lettre : 3 au plus.",
    "Too many accents on one letter: 3 at most."],
  err_mixed_scripts: ["Un mot mélange des lettres d'alphabets différents (une lettre cyrillique ou grecque qui ressemble à une lettre latine ?) : retapez-le.",
    "A word mixes letters of different alphabets (a Cyrillic or Greek letter that looks Latin?): retype it."],
  // Console photo fixes (issue 15)
  photos_refused_block: ["Retirez les photos refusées ou réessayez.",
    "Remove the refused photos or retry them."],
  photo_shrinking: ["Réduction…", "Shrinking…"],
  // Producers in the console (issue 16): "My producers", its search and new producer's
  // form, and the producers a post names
  producers_heading: ["Mes producteurs", "My producers"],
  producers_help: ["Les producteurs dont vous vendez les produits : chaque annonce peut en nommer jusqu'à trois, et les passants voient d'où ça vient.",
    "The producers whose goods you sell: each post can name up to three, and passers-by see where it comes from."],
  producers_empty: ["Aucun producteur pour le moment.", "No producer yet."],
  prod_search_label: ["Ajouter un producteur déjà connu près d'ici", "Add a producer known nearby"],
  prod_search_help: ["Tapez une partie de son nom ou de son village : choisir celui qui existe déjà lui garde une seule page.",
    "Type part of its name or its village: picking the one already known keeps a single page for it."],
  prod_search_found_one: ["{n} producteur trouvé près d'ici", "{n} producer found nearby"],
  prod_search_found_other: ["{n} producteurs trouvés près d'ici", "{n} producers found nearby"],
  prod_search_none: ["Aucun producteur connu près d'ici pour « {q} » : ajoutez-le comme nouveau producteur.",
    "No producer known nearby for “{q}”: add it as a new producer."],
  prod_option_new: ["Nouveau producteur « {name} »…", "New producer “{name}”…"],
  prod_option_mine: ["déjà dans votre liste", "already in your list"],
  prod_new: ["Nouveau producteur", "New producer"],
  prod_new_heading: ["Un nouveau producteur", "A new producer"],
  prod_name: ["Nom", "Name"],
  prod_place: ["Village ou ville", "Village or town"],
  prod_position_help: ["Où est-il ? Touchez la carte à son emplacement (le point bleu est votre boutique), ou tapez sa latitude et sa longitude.",
    "Where is it? Tap the map at its place (the blue dot is your shop), or type its latitude and longitude."],
  prod_lat: ["Latitude", "Latitude"],
  prod_lon: ["Longitude", "Longitude"],
  prod_distance: ["À {km} de la boutique.", "{km} from the shop."],
  prod_add: ["Ajouter ce producteur", "Add this producer"],
  prod_need_name: ["Indiquez le nom du producteur.", "Enter the producer's name."],
  prod_need_place: ["Indiquez son village ou sa ville.", "Enter its village or town."],
  prod_need_position: ["Touchez la carte à son emplacement, ou tapez sa latitude et sa longitude.",
    "Tap the map at its place, or type its latitude and longitude."],
  place_bad_lat: ["Latitude non valable : un nombre entre -85 et 85, par exemple 44,894.",
    "Invalid latitude: a number between -85 and 85, for example 44.894."],
  place_bad_lon: ["Longitude non valable : un nombre entre -180 et 180, par exemple -0,155.",
    "Invalid longitude: a number between -180 and 180, for example -0.155."],
  place_map_failed: ["La carte n'a pas pu se charger : tapez la latitude et la longitude.",
    "The map could not load: type the latitude and longitude."],
  place_tiles_failed: ["Fond de carte indisponible : la carte répond toujours au toucher, ou tapez la latitude et la longitude.",
    "Map background unavailable: the map still takes a tap, or type the latitude and longitude."],
  // No agreement with {name}: "Ferme du Test est ajouté" read wrong (a cold user's find).
  prod_linked: ["Vos producteurs comptent désormais {name}.",
    "{name} is added to your producers."],
  prod_linked_existing: ["Vos producteurs comptent désormais {name}, déjà sur la carte près d'ici.",
    "{name}, already known nearby, is added to your producers."],
  prod_already: ["{name} est déjà dans vos producteurs.", "{name} is already one of your producers."],
  prod_remove: ["Retirer", "Remove"],
  prod_remove_label: ["Retirer {name} de vos producteurs", "Remove {name} from your producers"],
  prod_remove_confirm: ["Confirmer ?", "Confirm?"],
  prod_remove_confirm_label: ["Confirmer : retirer {name} de vos producteurs",
    "Confirm: remove {name} from your producers"],
  prod_removed: ["{name} est retiré de vos producteurs.", "{name} is removed from your producers."],
  prod_pick_legend: ["D'où ça vient", "Where it comes from"],
  prod_pick_help: ["Jusqu'à {n} de vos producteurs, montrés sur l'annonce.",
    "Up to {n} of your producers, shown on the post."],
  prod_pick_empty: ["Ajoutez vos producteurs dans « Mes producteurs » pour les nommer ici.",
    "Add your producers under “My producers” to name them here."],
  prod_err_markup_not_allowed: ["Le HTML et les scripts ne sont pas autorisés dans le nom ou le lieu d'un producteur.",
    "HTML and scripts are not allowed in a producer's name or place."],
  prod_err_too_many_links: ["Pas de lien dans le nom ou le lieu d'un producteur.",
    "No link in a producer's name or place."],
  prod_err_rate_limited: ["Trop de changements d'un coup : réessayez dans une minute.",
    "Too many changes at once: try again in a minute."],
  prod_search_err_rate_limited: ["Trop de recherches d'un coup : réessayez dans une minute.",
    "Too many searches at once: try again in a minute."],
  // Faces fixes (issue 15): a card that ended while being read stays in place, said so
  card_ended: ["Terminé", "Ended"],
  // Producer page map (issue 16): where the producer is, and the shops of the list
  producer_map_label: ["Carte : {name} et les boutiques qui le vendent",
    "Map: {name} and the shops that sell it"],
  producer_map_producer: ["{name} (producteur)", "{name} (producer)"],
  producer_map_shop: ["{shop} : voir dans la liste", "{shop}: see it in the list"],
  // Holds (issue 17): refusals of "Hold it for me" (services/holds.py, web/holds.py)
  err_invalid_hold: ["Indiquez votre prénom (40 caractères au plus).",
    "Give your first name (40 characters at most)."],
  err_invalid_name: ["Un prénom seulement, en lettres : ni chiffres, ni symboles, ni adresse e-mail ou web.",
    "A first name only, in letters: no digits, symbols, e-mail or web address."],
  err_post_gone: ["Cette annonce n'est plus en ligne.", "This post is no longer online."],
  err_not_holdable: ["La boutique ne met pas cet article de côté.",
    "The shop does not hold this item."],
  err_sold_out: ["Déjà tout réservé : plus rien à mettre de côté.",
    "All held already: nothing left to put aside."],
  err_too_many_holds: ["Trop de réservations en cours depuis ce réseau : annulez-en une ou réessayez plus tard.",
    "Too many holds open from this network: cancel one or try again later."],
  err_unknown_hold: ["Réservation introuvable.", "Hold not found."],
  err_hold_ended: ["Cette réservation est terminée.", "This hold has ended."],
  err_invalid_hold_change: ["Cette réservation ne peut pas changer ainsi.",
    "This hold cannot change that way."],
  // Holds: console (issue 17; shopholds.js, shop.js). "hc_": holds in the console.
  hc_offer_legend: ["Mise de côté", "Holding"],
  hc_offer_switch: ["Peut être mis de côté", "Can be held"],
  hc_quantity: ["Combien (1 à 50)", "How many (1 to 50)"],
  hc_minutes_label: ["Gardé combien de minutes", "Kept for how many minutes"],
  hc_presets: ["Durées rapides", "Quick durations"],
  hc_bad_quantity: ["Combien mettre de côté : un nombre entier de 1 à {max}.",
    "How many to hold: a whole number from 1 to {max}."],
  hc_bad_minutes: ["Durée : un nombre entier de minutes, de {min} à {max}.",
    "How long: a whole number of minutes, from {min} to {max}."],
  hc_shop_off_note: ["Votre boutique n'accepte pas les réservations en ce moment : l'offre s'affichera quand vous les réactiverez.",
    "Your shop does not take holds right now: the offer shows once you turn them back on."],
  hc_line: ["Mettez-le moi de côté · encore {n}", "Hold it for me · {n} left"],
  hc_line_none: ["Mettez-le moi de côté · plus aucun", "Hold it for me · none left"],
  hc_own_line: ["{line} · gardé {t}", "{line} · kept {t}"],
  hc_holds_heading: ["Réservations", "Holds"],
  hc_pending_count: ["{n} en attente", "{n} waiting"],
  hc_today_one: ["{n} réservation aujourd'hui", "{n} hold today"],
  hc_today_other: ["{n} réservations aujourd'hui", "{n} holds today"],
  hc_holds_empty: ["Aucune réservation en cours.", "No hold open."],
  hc_sound_on: ["Son : activé", "Sound: on"],
  hc_sound_off: ["Son : coupé", "Sound: off"],
  hc_status_pending: ["En attente de votre réponse", "Waiting for your answer"],
  hc_status_accepted: ["Mis de côté", "Put aside"],
  hc_status_declined: ["Refusée", "Declined"],
  hc_status_collected: ["Remise au client", "Collected"],
  hc_status_expired: ["Expirée", "Expired"],
  hc_status_cancelled: ["Annulée", "Cancelled"],
  hc_time_up: ["temps écoulé", "time is up"],
  hc_left_under_minute: ["moins d'une minute restante", "less than a minute left"],
  hc_left_min: ["encore {n} min", "{n} min left"],
  hc_left_h: ["encore {t}", "{t} left"],
  hc_accept: ["Accepter", "Accept"],
  hc_accept_label: ["Accepter la réservation de {name} ({code})", "Accept {name}'s hold ({code})"],
  hc_decline: ["Refuser", "Decline"],
  hc_decline_label: ["Refuser la réservation de {name} ({code})", "Decline {name}'s hold ({code})"],
  hc_collected: ["Remis au client", "Collected"],
  hc_collected_label: ["Remis à {name} ({code})", "Collected by {name} ({code})"],
  hc_done_accept: ["Réservation de {name} acceptée ({code}).", "{name}'s hold accepted ({code})."],
  hc_done_decline: ["Réservation de {name} refusée ({code}).", "{name}'s hold declined ({code})."],
  hc_done_collected: ["Remis à {name} ({code}).", "Collected by {name} ({code})."],
  hc_new_one: ["Nouvelle réservation : {name}, {title} (code {code})",
    "New hold: {name}, {title} (code {code})"],
  hc_new_many: ["{n} nouvelles réservations", "{n} new holds"],
  hc_till_help: ["Les 4 caractères que le client vous dit ou vous montre.",
    "The 4 characters the customer says or shows you."],
  hc_till_scan: ["Scanner", "Scan"],
  hc_till_scan_stop: ["Arrêter le scan", "Stop scanning"],
  hc_till_confirm: ["Remis au client", "Collected"],
  hc_till_need_code: ["Tapez le code de 4 caractères.", "Type the 4-character code."],
  hc_till_no_hold: ["Aucune réservation en cours avec le code {code}.",
    "No open hold with the code {code}."],
  hc_till_no_camera: ["Caméra indisponible : tapez le code.", "No camera available: type the code."],
  hc_holds_takes: ["Accepter les réservations", "Take holds"],
  // Profile changes reach live cards at once, or within a minute when the shop changed
  // its profile just before (services/republish.py folds them): say so, not "done".
  hc_holds_takes_on: ["Les réservations sont acceptées : vos annonces en ligne proposent la mise de côté d'ici une minute.",
    "Holds are taken: your live posts offer them within a minute."],
  hc_holds_takes_off: ["Les réservations sont désactivées : vos annonces en ligne ne proposent plus la mise de côté d'ici une minute.",
    "Holds are turned off: your live posts stop offering them within a minute."],
  // Holds: passer-by and screen (cards, the asking dialog, "My holds", the screen's count)
  // No-break spaces: "plus que 2" ("2 left") never split, nor its dot from what precedes.
  hold_ask: ["Le mettre de côté\u00a0· plus\u00a0que\u00a0{n}", "Hold it for me\u00a0· {n}\u00a0left"],
  hold_all_held: ["Tout est réservé", "All held"],
  hold_when_open: ["Mise de côté possible à l'ouverture", "Can be held once the shop opens"],
  hold_count: ["{n} à réserver", "{n} left to hold"],
  held_today_one: ["{n} réservation aujourd'hui", "{n} held today"],
  held_today_other: ["{n} réservations aujourd'hui", "{n} held today"],
  hold_dialog_title: ["Le mettre de côté", "Hold it for me"],
  hold_name_label: ["Votre prénom", "Your first name"],
  hold_explain: ["La boutique le garde {t}. Vous recevrez un code à dire en caisse. Seul votre prénom est envoyé.",
    "The shop keeps it {t}. You will get a code to say at the till. Only your first name is sent."],
  hold_submit: ["Demander", "Ask the shop"],
  hold_sending: ["Envoi…", "Sending…"],
  hold_close: ["Fermer", "Close"],
  hold_done_title: ["Votre réservation", "Your hold"],
  hold_code_label: ["Code à dire en caisse", "Code to say at the till"],
  hold_qr_alt: ["QR code du code {code}, pour la caisse", "QR code of the code {code}, for the till"],
  hold_kept_until: ["Si la boutique accepte, gardé jusqu'à {time}",
    "If the shop accepts, kept until {time}"],
  hold_status_pending: ["en attente de la boutique", "waiting for the shop"],
  hold_status_accepted: ["mise de côté jusqu'à {time}", "put aside until {time}"],
  hold_status_declined: ["refusée par la boutique", "declined by the shop"],
  hold_status_collected: ["retirée en boutique", "collected"],
  hold_status_expired: ["délai dépassé", "time is up"],
  hold_status_cancelled: ["annulée", "cancelled"],
  hold_note: ["Réservation « {title} » : {status}", "Hold “{title}”: {status}"],
  my_holds: ["Mes réservations ({n})", "My holds ({n})"],
  my_holds_heading: ["Mes réservations", "My holds"],
  my_holds_device: ["Gardées sur cet appareil seulement.", "Kept on this device only."],
  hold_cancel: ["Annuler", "Cancel"],
  hold_cancel_confirm: ["Confirmer l'annulation", "Tap again to cancel"],
  // A first name's refusals, in its words (not a post's)
  hold_err_markup_not_allowed: ["Un prénom sans HTML ni balises.",
    "A first name, without HTML or tags."],
  hold_err_too_many_links: ["Un prénom sans lien.", "A first name, without a link."],
  hold_err_control_characters: ["Le prénom contient des caractères invisibles : retapez-le.",
    "The first name has invisible characters: retype it."],
  hold_err_content_rejected: ["Ce prénom n'est pas accepté.", "This first name is not accepted."],
  hold_err_rate_limited: ["Trop de réservations demandées : réessayez plus tard.",
    "Too many holds asked for: try again later."],
  // Holds' abuse limits and states (issue 17, second cold round): why a hold was declined
  hold_status_post_ended: ["annonce retirée ou terminée avant la réponse de la boutique",
    "the post ended before the shop answered"],
  hold_status_shop_disabled: ["la boutique n'est plus sur Streetfeed : rien n'est gardé",
    "the shop is no longer on Streetfeed: nothing is kept"],
  hold_status_no_answer: ["la boutique n'a pas répondu à temps", "the shop did not answer in time"],
  // Holds, the faces' last gaps (issue 17, holdfaces): the screen's head when short of
  // room, the console's till and switch, the withdrawal of a held post, its shop's line.
  held_today_short_one: ["{n} réservation", "{n} held"],
  held_today_short_other: ["{n} réservations", "{n} held"],
  hc_till_heading: ["Code en caisse", "Code at the till"],
  hc_till_code_label: ["Le code du client", "The customer's code"],
  hc_till_find_hold: ["Trouver la réservation", "Find the hold"],
  hc_till_clear: ["Effacer le code", "Clear the code"],
  hc_takes_help: ["Si vous le désactivez : vos annonces ne proposent plus de mise de côté et personne ne peut en demander de nouvelle ; les réservations en cours restent, à traiter et à remettre.",
    "When off: your posts offer no holds and nobody can ask for a new one; the holds already open stay, to answer and hand over."],
  hc_withdraw_holds_one: ["Cette annonce a {n} réservation en cours : {detail}.",
    "This post has {n} open hold: {detail}."],
  hc_withdraw_holds_other: ["Cette annonce a {n} réservations en cours : {detail}.",
    "This post has {n} open holds: {detail}."],
  hc_withdraw_pending_one: ["{n} en attente sera refusée", "{n} waiting for your answer will be declined"],
  hc_withdraw_pending_other: ["{n} en attente seront refusées", "{n} waiting for your answer will be declined"],
  hc_withdraw_accepted_one: ["{n} mise de côté reste gardée pour son client",
    "{n} put aside stays kept for its customer"],
  hc_withdraw_accepted_other: ["{n} mises de côté restent gardées pour leurs clients",
    "{n} put aside stay kept for their customers"],
  hc_withdraw_sep: [" ; ", "; "],
  hc_withdraw_anyway: ["Retirer quand même", "Withdraw anyway"],
  hc_withdraw_keep: ["Garder l'annonce", "Keep the post"],
  hc_own_held_one: ["{n} réservé · encore {left} sur {total}", "{n} held · {left} left of {total}"],
  hc_own_held_other: ["{n} réservés · encore {left} sur {total}", "{n} held · {left} left of {total}"],
  hc_own_none_held: ["Rien de réservé · encore {left} sur {total}", "None held · {left} left of {total}"],
  hc_own_all_held: ["Tout est réservé : {n} sur {n}", "All held: {n} of {n}"],
  // Holds, a second cold user's polish (issue 17, holdpolish): a duration written the same
  // way on every face (durationText).
  duration_min: ["{n} min", "{n} min"],
  duration_h: ["{h} h", "{h} h"],
  duration_h_min: ["{h} h {m}", "{h} h {m}"],
  // Push alerts (server codes)
  err_invalid_push_subscription: ["Cet abonnement aux alertes n'est pas valide.",
    "This alert subscription is not valid."],
  err_push_endpoint_not_allowed: ["Ce navigateur utilise un service d'alertes que nous ne "
    + "pouvons pas joindre.", "This browser uses an alert service we cannot reach."],
  err_invalid_push_keys: ["Les clés d'alerte de ce navigateur ne sont pas valides.",
    "This browser's alert keys are not valid."],
  err_unknown_push_subscription: ["Cet abonnement aux alertes n'existe plus.",
    "This alert subscription no longer exists."],
  // Push alerts (page) (issue 18): "Alert me" on a followed shop's cards, the switch with
  // the filters and what it says, the post an alert opens (/?post=), and the words sw.js
  // writes a notification with (alerts.js hands them over)
  alert_me: ["M'alerter", "Alert me"],
  alerts_switch: ["Alertes de mes boutiques suivies", "Alerts for my followed shops"],
  alerts_night: ["Aussi la nuit (21 h – 8 h)", "Also at night (21:00–08:00)"],
  alerts_on_one: ["Alertes actives pour {n} boutique.", "Alerts on for {n} shop."],
  alerts_on_other: ["Alertes actives pour {n} boutiques.", "Alerts on for {n} shops."],
  alerts_follow_first: ["Suivez une boutique (☆) : ses annonces vous alerteront.",
    "Follow a shop (☆): its posts will alert you."],
  alerts_cap: ["Alertes actives pour les {n} boutiques suivies le plus récemment.",
    "Alerts on for the {n} shops you followed most recently."],
  alerts_denied: ["Notifications bloquées pour ce site : autorisez-les dans les réglages du navigateur, puis réessayez.",
    "Notifications are blocked for this site: allow them in the browser's settings, then try again."],
  alerts_dismissed: ["Alertes non activées : les notifications n'ont pas été autorisées.",
    "Alerts not turned on: notifications were not allowed."],
  alerts_unsupported: ["Ce navigateur ne peut pas recevoir d'alertes.",
    "This browser cannot receive alerts."],
  alerts_ios: ["Sur iPhone et iPad, ajoutez d'abord Streetfeed à l'écran d'accueil (Partager, puis « Sur l'écran d'accueil ») et ouvrez-le de là.",
    "On iPhone and iPad, first add Streetfeed to the home screen (Share, then “Add to Home Screen”) and open it from there."],
  alerts_unavailable: ["Ce navigateur ne peut pas recevoir d'alertes ici (une fenêtre privée ne le peut pas).",
    "This browser cannot receive alerts here (a private window cannot)."],
  alerts_failed: ["Alertes non mises à jour : réessayez dans un instant.",
    "Alerts not updated: try again in a moment."],
  alert_me_on: ["Alertes activées", "Alerts on"],
  alerts_manners: ["Au plus une alerte par boutique et par heure, cinq par jour, aucune de 21 h à 8 h.",
    "At most one alert per shop an hour, five a day, none from 21:00 to 08:00."],
  alerts_manners_night: ["Au plus une alerte par boutique et par heure, cinq par jour.",
    "At most one alert per shop an hour, five a day."],
  alert_until: ["jusqu'à {time}", "until {time}"],
  alert_left: ["encore {t}", "{t} left"],
  alert_ended: ["Cette annonce est terminée.", "This post has ended."],
  alert_neutral: ["Du nouveau dans une boutique que vous suivez.", "News from a shop you follow."],
  post_view_back: ["Retour au fil", "Back to the feed"],
  post_view_kicker: ["Annonce", "Post"],
  post_view_loading: ["Chargement de l'annonce…", "Loading the post…"],
  post_view_gone: ["Cette annonce est terminée", "This post has ended"],
  post_view_gone_more: ["Elle n'est plus en ligne. Le fil montre ce qui est nouveau autour de vous.",
    "It is no longer online. The feed shows what's new around you."],
  post_view_failed: ["Annonce indisponible pour le moment.", "This post cannot be loaded right now."],
  post_view_retry: ["Réessayer", "Try again"],
};
const LANGS = ["fr", "en"];

const STORAGE_KEY = "streetfeed.lang";
const listeners = [];

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY); // throws when storage is disabled
  } catch {
    return null;
  }
}

function initial() {
  const saved = stored();
  if (LANGS.includes(saved)) return saved;
  const prefs = navigator.languages?.length ? navigator.languages : [navigator.language || ""];
  for (const pref of prefs) {
    const base = String(pref).slice(0, 2).toLowerCase();
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

let lang = initial();

export const getLang = () => lang;

const hasKey = (key) => Object.hasOwn(STRINGS, key);

/** t(`${base}_one`) or t(`${base}_other`), by the language's plural rules. */
export function plural(base, n, vars = {}) {
  const rule = new Intl.PluralRules(lang).select(n) === "one" ? "one" : "other";
  return t(`${base}_${rule}`, { n, ...vars });
}

export function t(key, vars = {}) {
  const text = STRINGS[key]?.[LANGS.indexOf(lang)] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/**
 * The i18n key for an error the server sent ({code, message}): its code's text, or a
 * generic one for a code this page does not know. With a `context` ("photo", "prod"),
 * `<context>_err_<code>` wins where there is one: the general words would mislead there
 * ("too many posts" for too many photos an hour). The server's message is English and
 * never shown: a French sentence must not carry it.
 */
export function errorKey(error, context = "") {
  const code = String(error?.code ?? "");
  const own = `${context}_err_${code}`;
  if (context && hasKey(own)) return own;
  const key = `err_${code}`;
  return hasKey(key) ? key : "err_generic";
}

export const errorText = (error) => t(errorKey(error));

export function onLangChange(fn) {
  listeners.push(fn);
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === lang) return;
  lang = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Private browsing: the choice just lasts for this visit.
  }
  applyStatic();
  listeners.forEach((fn) => fn(lang));
}

export const otherLang = () => (lang === "fr" ? "en" : "fr");

// Streetfeed is European: English dates the British way and every time on 24 hours,
// whatever the browser's own locale ("en" alone would be American: "07:30 AM").
export const LOCALES = { fr: "fr-FR", en: "en-GB" };
const dateFormats = new Map(); // Intl objects are costly to create; cards tick every second

/**
 * The one Intl.DateTimeFormat of the pages, for the current language: every date or time
 * shown goes through it. Throws RangeError for a time zone this browser lacks.
 */
export function dateFormat(options) {
  const key = `${lang}:${JSON.stringify(options)}`;
  let format = dateFormats.get(key);
  if (!format) {
    const clock = options.hour || options.timeStyle ? { hourCycle: "h23" } : {};
    format = new Intl.DateTimeFormat(LOCALES[lang], { ...clock, ...options });
    dateFormats.set(key, format);
  }
  return format;
}

/** A duration in whole minutes as both faces write it: "15 min", "1 h", "1 h 30", "2 h". */
export function durationText(minutes) {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (!h) return t("duration_min", { n: m });
  return m ? t("duration_h_min", { h, m: String(m).padStart(2, "0") }) : t("duration_h", { h });
}

/** "14:05": a moment as hours and minutes, 24-hour, in `timeZone` or the browser's own. */
export function hhmm(ms, timeZone = undefined) {
  return dateFormat({ hour: "2-digit", minute: "2-digit", ...(timeZone ? { timeZone } : {}) })
    .format(ms);
}

// Fixed page text is marked with data-i18n in the HTML, so it needs no code of its own.
// <html data-i18n-title="key"> names the page title.
export function applyStatic(root = document) {
  document.documentElement.lang = lang;
  document.title = t(document.documentElement.dataset.i18nTitle ?? "title");
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
