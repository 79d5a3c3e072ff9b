/* api_ui.c — see api_ui.h. */
#include "api_ui.h"

#include <string.h>

const struct api_ui_asset *api_ui_find(const char *name)
{
    if (!name || !*name)
        name = "index.html";
    for (size_t i = 0; i < api_ui_assets_n; i++)
        if (strcmp(api_ui_assets[i].name, name) == 0)
            return &api_ui_assets[i];
    return NULL;
}
