/* api_ui.h — the findings page's files, compiled in from ui/ (scripts/embed_ui.sh), and the
 * headers every reply carries so that nothing a reply holds can run as the page's code. */
#ifndef CW_API_UI_H
#define CW_API_UI_H

#include <stddef.h>

/* The whole page, every file of ui/ together: the build refuses more (Makefile, embed_ui.sh). */
#define UI_MAX_BYTES 98304  /* 96 KiB */

struct api_ui_asset {
    const char *name;          /* file name in ui/, [A-Za-z0-9._-] */
    const char *type;          /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* The table (build/ui_blob.c), terminated by a zero entry. */
extern const struct api_ui_asset api_ui_assets[];
extern const size_t api_ui_assets_n;
extern const size_t api_ui_total_bytes;

/* The asset called name ("" or NULL: index.html), or NULL. */
const struct api_ui_asset *api_ui_find(const char *name);

/* Content-Security-Policy of the page's files: its own scripts and styles only, no inline code,
 * no eval, API calls to its own origin, never framed. */
#define API_UI_CSP                                                                                          \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "       \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
/* Content-Security-Policy of every other reply (JSON, metrics): a document opened directly in a
 * browser runs nothing and loads nothing. */
#define API_DATA_CSP "default-src 'none'; frame-ancestors 'none'"

#endif
