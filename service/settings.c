/* settings.c — loading the network knowledge once, for serve (and its SIGHUP reload) and scan. */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

static int parse_accounts(struct set_net *out, const char *spec, char *msg, size_t msg_size)
{
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *q = p;
        while (n && *q == ' ') {
            q++;
            n--;
        }
        while (n && q[n - 1] == ' ')
            n--;
        if (n) {
            int ok = n == 12;
            for (size_t i = 0; ok && i < n; i++)
                ok = q[i] >= '0' && q[i] <= '9';
            if (!ok) {
                snprintf(msg, msg_size, "CREDWATCH_ACCOUNTS: \"%.*s\" is not a 12-digit account id", (int)(n > 40 ? 40 : n),
                         q);
                return -1;
            }
            if (out->n_accounts == DET_ACCOUNTS_MAX) {
                snprintf(msg, msg_size, "CREDWATCH_ACCOUNTS: more than %d accounts", DET_ACCOUNTS_MAX);
                return -1;
            }
            memcpy(out->accounts[out->n_accounts], q, 12);
            out->accounts[out->n_accounts][12] = 0;
            out->n_accounts++;
        }
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return 0;
}

int set_net_load(struct set_net *out, const char *ip_ranges_path, const char *allow_cidrs, const char *accounts,
                 char *msg, size_t msg_size)
{
    char why[NR_MSG_MAX];
    memset(out, 0, sizeof *out);
    struct nr_table *t = nr_table_new();
    if (!t) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    if (ip_ranges_path && ip_ranges_path[0]) {
        if (nr_load_aws(t, ip_ranges_path, why, sizeof why)) {
            snprintf(msg, msg_size, "CREDWATCH_AWS_IP_RANGES: %s", why);
            nr_table_unref(t);
            return -1;
        }
        out->aws_ranges = 1;
    }
    if (allow_cidrs && allow_cidrs[0] && nr_add_allow(t, allow_cidrs, why, sizeof why)) {
        snprintf(msg, msg_size, "CREDWATCH_ALLOW_CIDRS: %s", why);
        nr_table_unref(t);
        return -1;
    }
    if (nr_build(t, why, sizeof why)) {
        snprintf(msg, msg_size, "network ranges: %s", why);
        nr_table_unref(t);
        return -1;
    }
    if (accounts && parse_accounts(out, accounts, msg, msg_size)) {
        nr_table_unref(t);
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->table = t;
    out->kinds = WL_MASK_ALL;
    return 0;
}

int set_workloads(const char *v, const char *name, unsigned *kinds, char *msg, size_t msg_size)
{
    char why[SET_MSG_MAX];
    if (wl_kinds_parse(v, kinds, why, sizeof why)) {
        snprintf(msg, msg_size, "%s: %s", name, why);
        return -1;
    }
    return 0;
}

void set_workloads_name(unsigned kinds, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    for (int k = WL_NONE + 1; k < WL_KIND_COUNT; k++)
        if (kinds & WL_MASK(k))
            n += (size_t)snprintf(out + (n < size ? n : size), n < size ? size - n : 0, "%s%s", n ? "," : "",
                                  wl_kind_name((enum wl_kind)k));
}

int set_net_from_env(struct set_net *out, char *msg, size_t msg_size)
{
    int rc = set_net_load(out, getenv("CREDWATCH_AWS_IP_RANGES"), getenv("CREDWATCH_ALLOW_CIDRS"),
                          getenv("CREDWATCH_ACCOUNTS"), msg, msg_size);
    if (!rc && set_workloads(getenv("CREDWATCH_WORKLOADS"), "CREDWATCH_WORKLOADS", &out->kinds, msg, msg_size)) {
        set_net_free(out);
        return -1;
    }
    return rc;
}

void set_net_ctx(const struct set_net *n, struct det_ctx *ctx)
{
    ctx->net = n->table;
    ctx->aws_ranges = n->aws_ranges;
    ctx->accounts = (const char (*)[EV_ACCOUNT_MAX])n->accounts;
    ctx->n_accounts = n->n_accounts;
    ctx->kinds = n->kinds;
}

void set_net_free(struct set_net *n)
{
    nr_table_unref(n->table);
    n->table = NULL;
}

int set_store_max_bytes(const char *v, const char *name, size_t *out, char *msg, size_t msg_size)
{
    char *end;
    errno = 0;
    unsigned long long n = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (!v || *v < '0' || *v > '9' || errno || *end || n < STORE_MEM_MIN_BYTES || n > SET_STORE_BYTES_MAX) {
        snprintf(msg, msg_size, "%s: expected bytes, %zu-%zu", name, STORE_MEM_MIN_BYTES, SET_STORE_BYTES_MAX);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

int set_data_max_bytes(const char *v, const char *name, uint64_t *out, char *msg, size_t msg_size)
{
    char *end;
    errno = 0;
    unsigned long long n = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (!v || *v < '0' || *v > '9' || errno || *end || n < STORE_DURABLE_MIN_BYTES || n > SET_DATA_BYTES_MAX) {
        snprintf(msg, msg_size, "%s: expected bytes, %llu-%llu", name, (unsigned long long)STORE_DURABLE_MIN_BYTES,
                 (unsigned long long)SET_DATA_BYTES_MAX);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

/* Can this process use dir as the data directory: a directory it may write and enter, or a missing
 * one whose parent it may (the store creates it)? */
static int dir_usable(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) == 0;
    if (errno != ENOENT)
        return 0;
    char parent[SET_PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof parent)
        return 0;
    memcpy(parent, dir, n + 1);
    char *slash = strrchr(parent, '/');
    if (!slash)
        return access(".", W_OK | X_OK) == 0;
    if (slash == parent)
        slash[1] = '\0';  /* "/x": the parent is "/" */
    else
        *slash = '\0';
    return access(parent, W_OK | X_OK) == 0;
}

static int copy_path(const char *p, size_t n, char *out, size_t size, char *msg, size_t msg_size)
{
    if (n >= size || n >= SET_PATH_MAX) {
        snprintf(msg, msg_size, "CREDWATCH_DATA_DIR: longer than %d bytes", SET_PATH_MAX - 1);
        return -1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int set_data_dir(const char *given, const char *state_dir, const char *system_dir, char *out, size_t size,
                 const char **from, char *msg, size_t msg_size)
{
    if (given && *given) {
        *from = "CREDWATCH_DATA_DIR";
        return copy_path(given, strlen(given), out, size, msg, msg_size);
    }
    if (state_dir && *state_dir && *state_dir != ':') {
        *from = "STATE_DIRECTORY";
        return copy_path(state_dir, strcspn(state_dir, ":"), out, size, msg, msg_size);
    }
    if (system_dir && dir_usable(system_dir)) {
        *from = "system";
        return copy_path(system_dir, strlen(system_dir), out, size, msg, msg_size);
    }
    *from = "local";
    return copy_path(SET_DATA_DIR_LOCAL, strlen(SET_DATA_DIR_LOCAL), out, size, msg, msg_size);
}
