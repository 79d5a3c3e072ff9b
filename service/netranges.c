/* netranges.c — see netranges.h for the contract.
 *
 * Representation. While a table is being built it is a flat list of prefix records (one per
 * AWS prefix and service, one per allow-list entry). nr_build adds the private ranges, sorts the
 * list, merges the records of a prefix listed for several services into one, and flattens each
 * family into sorted disjoint intervals [start(i), start(i+1)) that cover the whole address space,
 * each carrying the index of its winning record (or NONE: external). Any two CIDR blocks are either
 * nested or disjoint, so one sweep over the records sorted by (start, length) with a stack of the
 * open enclosing blocks finds, for every interval, the innermost block of the highest class
 * (allow > AWS > private): that is longest-prefix match with the allow-list on top.
 *
 * Lookup is then "the last interval whose start is <= the address": a branch-free binary search,
 * whose loads are independent of the comparisons, so the CPU can run several lookups' searches in
 * parallel. For IPv4 a 64 Ki-slot index on the top 16 bits gives the first and last candidate
 * intervals, which leaves 0 to 3 search steps for almost every address instead of 14. IPv6 keys
 * are compared as 128-bit integers.
 *
 * Text parsing: by small strict parsers here, accepting exactly what inet_pton accepts (dotted
 * quad without leading zeros; RFC 4291 IPv6 text), because they work on a length-delimited span
 * (allow-list entries need no copy) and because glibc's IPv6 inet_pton cost more than the whole
 * rest of a lookup (measured by tests/bench_netranges.c). Anything else is not an address.
 */
#include "netranges.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>

__extension__ typedef unsigned __int128 nr_u128;

#define NONE UINT32_MAX
#define NR_NEST_MAX (3 * 129 + 1)   /* open blocks in the sweep: 129 lengths x 3 classes, +1 */
#define NR_V4_INDEX_BITS 16
#define NR_V4_INDEX_SLOTS (1u << NR_V4_INDEX_BITS)
#define NR_ENTRY_SHOWN 80           /* characters of a bad entry quoted in a message */

/* One prefix. cls is NR_AWS, NR_ALLOW or NR_PRIVATE; family AF_INET or AF_INET6. */
struct nr_rec {
    uint8_t net[16];     /* network address, IPv4 in the first 4 bytes, the rest zero */
    uint8_t family;      /* 4 or 6, so the sort puts IPv4 first */
    uint8_t len;
    uint8_t cls;
    uint16_t region;     /* NR_AWS: index into regions */
    uint16_t service;    /* NR_AWS: index of the most specific service (set by nr_build) */
    uint16_t label;      /* NR_ALLOW: index into labels */
    uint32_t seq;        /* insertion order: keeps merges deterministic (first region wins) */
    uint64_t services;   /* NR_AWS: set of service indices */
};

struct nr_table {
    atomic_uint refs;
    int built;

    struct nr_rec *recs;
    size_t n_recs, cap_recs;
    size_t n_allow;
    uint32_t seq;

    char regions[NR_REGIONS_MAX][NR_REGION_MAX];
    size_t n_regions;
    char services[NR_SERVICES_MAX][NR_SERVICE_MAX];
    size_t n_services;
    char (*labels)[NR_LABEL_MAX];   /* NR_ALLOW_MAX slots, allocated on first use */

    /* Built. */
    uint32_t *v4_start, *v4_val, *v4_index;  /* v4_index: NR_V4_INDEX_SLOTS + 1 entries */
    size_t n4;
    nr_u128 *v6_start;
    uint32_t *v6_val;
    size_t n6;
    size_t aws_v4, aws_v6;
};

struct nr_slot {
    pthread_mutex_t mu;
    struct nr_table *cur;
};

static void set_msg(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t size, const char *fmt, ...)
{
    if (!msg || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

/* ---------- parsing ---------- */

/* Strict dotted quad: exactly four decimal parts 0-255, no leading zeros (they mean octal to some
 * parsers, so an address that is ambiguous is not one), nothing after. */
static int parse_v4(const char *s, size_t n, uint32_t *out)
{
    const char *end = s + n;
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        if (s >= end || (unsigned)(*s - '0') > 9)
            return -1;
        unsigned x = (unsigned)(*s++ - '0');
        while (s < end && (unsigned)(*s - '0') <= 9) {
            if (x == 0)
                return -1;
            x = x * 10 + (unsigned)(*s++ - '0');
            if (x > 255)
                return -1;
        }
        v = (v << 8) | x;
        if (part < 3) {
            if (s >= end || *s != '.')
                return -1;
            s++;
        }
    }
    if (s != end)
        return -1;
    *out = v;
    return 0;
}

/* Hex digit value + 1, 0 for any other byte. A table rather than comparisons: in random addresses
 * digits and letters alternate unpredictably, and the branches of a range test cost a
 * misprediction every other character (measured: 140 ns per IPv6 address with them). */
static const uint8_t hex1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int hexval(char ch)
{
    return (int)hex1[(unsigned char)ch] - 1;
}

/* IPv6 text as RFC 4291 section 2.2 defines it and inet_pton accepts it: eight groups of 1-4 hex
 * digits, or fewer with one "::" standing for at least one zero group, the last 32 bits optionally
 * as a dotted quad. No zone, no brackets, no prefix. Written here rather than calling inet_pton
 * because that one is the slowest step of a lookup (about 140 ns, several times this); the test
 * suite compares the two on random text. */
static int parse_v6(const char *s, size_t n, uint8_t out[16])
{
    const char *p = s, *end = s + n;
    uint16_t g[8];
    int ng = 0, gap = -1;  /* gap: number of groups before the "::" */
    if (n < 2)
        return -1;
    if (p[0] == ':') {
        if (p[1] != ':')
            return -1;
        gap = 0;
        p += 2;
    }
    while (p < end) {
        const char *start = p;
        unsigned v = 0;
        int nd = 0, h;
        while (p < end && nd <= 4 && (h = hexval(*p)) >= 0) {
            v = (v << 4) | (unsigned)h;
            p++;
            nd++;
        }
        if (p < end && *p == '.') {
            /* The dotted quad ends the text and fills the last two groups. */
            uint32_t v4;
            if (ng > 6 || parse_v4(start, (size_t)(end - start), &v4) != 0)
                return -1;
            g[ng++] = (uint16_t)(v4 >> 16);
            g[ng++] = (uint16_t)v4;
            p = end;
            break;
        }
        if (nd == 0 || nd > 4 || ng == 8)
            return -1;
        g[ng++] = (uint16_t)v;
        if (p == end)
            break;
        if (*p != ':' || ++p == end)
            return -1;  /* not a separator, or a single trailing ':' */
        if (*p == ':') {
            if (gap >= 0)
                return -1;
            gap = ng;
            p++;
        }
    }
    if (gap < 0 ? ng != 8 : ng > 7)
        return -1;
    int zeros = 8 - ng, k = 0;
    for (int i = 0; i < 8; i++) {
        uint16_t v = 0;
        if (gap < 0 || i < gap)
            v = g[k++];
        else if (i >= gap + zeros)
            v = g[k++];
        out[2 * i] = (uint8_t)(v >> 8);
        out[2 * i + 1] = (uint8_t)v;
    }
    return 0;
}

static int is_v4_mapped(const uint8_t a[16])
{
    static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, pre, sizeof pre) == 0;
}

/* Parses n bytes of address text. *family is 4 or 6; mapped says whether IPv6 text in
 * ::ffff:0:0/96 was seen (the address is then returned as IPv4). */
static int parse_ip_n(const char *s, size_t n, int *family, uint8_t addr[16], int *mapped)
{
    uint32_t v4;
    *mapped = 0;
    if (n > 0 && n < NR_IP_TEXT_MAX && (unsigned)(s[0] - '0') <= 9 && parse_v4(s, n, &v4) == 0) {
        memset(addr, 0, 16);
        addr[0] = (uint8_t)(v4 >> 24);
        addr[1] = (uint8_t)(v4 >> 16);
        addr[2] = (uint8_t)(v4 >> 8);
        addr[3] = (uint8_t)v4;
        *family = 4;
        return 0;
    }
    if (n < 2 || n >= NR_IP_TEXT_MAX || parse_v6(s, n, addr) != 0)
        return -1;
    if (is_v4_mapped(addr)) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = 4;
        *mapped = 1;
        return 0;
    }
    *family = 6;
    return 0;
}

int nr_parse_ip(const char *text, int *family, uint8_t addr[16])
{
    int fam, mapped;
    if (!text || !family || !addr)
        return CW_EINVAL;
    size_t n = strnlen(text, NR_IP_TEXT_MAX);
    if (parse_ip_n(text, n, &fam, addr, &mapped) != 0)
        return CW_EFORMAT;
    *family = fam == 4 ? AF_INET : AF_INET6;
    return 0;
}

static nr_u128 addr_to_u128(const uint8_t a[16], int family)
{
    nr_u128 v = 0;
    int nb = family == 4 ? 4 : 16;
    for (int i = 0; i < nb; i++)
        v = (v << 8) | a[i];
    return v;
}

/* Host-part mask of a prefix of length len in a family of width bits. */
static nr_u128 host_mask(unsigned len, unsigned width)
{
    if (len >= width)
        return 0;
    nr_u128 all = width == 128 ? ~(nr_u128)0 : (((nr_u128)1 << width) - 1);
    return all >> len;
}

/* Parses "addr/len" (or a bare address when bare_ok: a host range) of n bytes into rec->net,
 * family and len. Host bits must be zero. On error, *why is a short reason. */
static int parse_cidr(const char *s, size_t n, int bare_ok, struct nr_rec *rec, const char **why)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    int fam, mapped;
    uint8_t addr[16];
    if (parse_ip_n(s, alen, &fam, addr, &mapped) != 0) {
        *why = "not an IPv4 or IPv6 address";
        return -1;
    }
    if (mapped) {
        /* Lookups unmap ::ffff:a.b.c.d to IPv4, so a mapped range would silently never match. */
        *why = "IPv4-mapped IPv6 range; write it as IPv4";
        return -1;
    }
    unsigned width = fam == 4 ? 32 : 128;
    unsigned len = width;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end) {
            *why = "empty prefix length";
            return -1;
        }
        if (*p == '0' && end - p > 1) {
            *why = "prefix length with a leading zero";
            return -1;
        }
        len = 0;
        for (; p < end; p++) {
            if ((unsigned)(*p - '0') > 9) {
                *why = "prefix length is not a number";
                return -1;
            }
            len = len * 10 + (unsigned)(*p - '0');
            if (len > width) {
                *why = fam == 4 ? "prefix length over 32" : "prefix length over 128";
                return -1;
            }
        }
    } else if (!bare_ok) {
        *why = "no prefix length";
        return -1;
    }
    if (addr_to_u128(addr, fam) & host_mask(len, width)) {
        *why = "host bits set after the prefix length";
        return -1;
    }
    memcpy(rec->net, addr, 16);
    rec->family = (uint8_t)fam;
    rec->len = (uint8_t)len;
    return 0;
}

/* Names used in class strings: non-empty, and only characters that need no quoting anywhere and
 * cannot be confused with the ':' separator of "aws:<region>:<service>". */
static int name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---------- building ---------- */

struct nr_table *nr_table_new(void)
{
    struct nr_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1u);
    return t;
}

#define NR_RECS_INITIAL 1024  /* first allocation of the record list: an allow-list alone fits */

/* CW_ETOOBIG past NR_PREFIXES_MAX records, CW_ENOMEM. */
static int push_rec(struct nr_table *t, const struct nr_rec *r)
{
    void *recs = t->recs;
    int rc = cw_grow(&recs, &t->cap_recs, t->n_recs + 1, sizeof *t->recs, NR_RECS_INITIAL, NR_PREFIXES_MAX);
    if (rc != 0)
        return rc;
    t->recs = recs;
    t->recs[t->n_recs] = *r;
    t->recs[t->n_recs].seq = t->seq++;
    t->n_recs++;
    return 0;
}

/* Index of name in the region (service) table, added if new; -1 when the table is full. */
static int intern_region(struct nr_table *t, const char *name)
{
    for (size_t i = t->n_regions; i-- > 0;)
        if (strcmp(t->regions[i], name) == 0)
            return (int)i;
    if (t->n_regions >= NR_REGIONS_MAX)
        return -1;
    snprintf(t->regions[t->n_regions], NR_REGION_MAX, "%s", name);
    return (int)t->n_regions++;
}

static int intern_service(struct nr_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_services; i++)
        if (strcmp(t->services[i], name) == 0)
            return (int)i;
    if (t->n_services >= NR_SERVICES_MAX)
        return -1;
    snprintf(t->services[t->n_services], NR_SERVICE_MAX, "%s", name);
    return (int)t->n_services++;
}

/* Reads one array of ip-ranges.json (key "prefixes" or "ipv6_prefixes", address field pkey). */
static int load_array(struct nr_table *t, json_t *root, const char *key, const char *pkey, int want_fam,
                      char *msg, size_t msg_size)
{
    json_t *arr = json_object_get(root, key);
    if (!arr) {
        if (want_fam == 6)
            return 0;  /* files from before IPv6 (2016) have no ipv6_prefixes */
        set_msg(msg, msg_size, "no \"%s\" array", key);
        return CW_EFORMAT;
    }
    if (!json_is_array(arr)) {
        set_msg(msg, msg_size, "\"%s\" is not an array", key);
        return CW_EFORMAT;
    }
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) {
        const char *ps = json_string_value(json_object_get(it, pkey));
        const char *rs = json_string_value(json_object_get(it, "region"));
        const char *ss = json_string_value(json_object_get(it, "service"));
        const char *why = NULL;
        struct nr_rec r;
        memset(&r, 0, sizeof r);
        if (!json_is_object(it))
            why = "not an object";
        else if (!ps)
            why = want_fam == 4 ? "no string \"ip_prefix\"" : "no string \"ipv6_prefix\"";
        else if (!rs || !name_ok(rs, strlen(rs)) || strlen(rs) >= NR_REGION_MAX)
            why = "\"region\" missing, too long or with characters outside [A-Za-z0-9._-]";
        else if (!ss || !name_ok(ss, strlen(ss)) || strlen(ss) >= NR_SERVICE_MAX)
            why = "\"service\" missing, too long or with characters outside [A-Za-z0-9._-]";
        else if (parse_cidr(ps, strlen(ps), 0, &r, &why) == 0 && r.family != want_fam)
            why = want_fam == 4 ? "IPv6 prefix in the IPv4 list" : "IPv4 prefix in the IPv6 list";
        if (why) {
            set_msg(msg, msg_size, "%s[%zu]%s%.*s%s: %s", key, i, ps ? " \"" : "", ps ? NR_ENTRY_SHOWN : 0,
                    ps ? ps : "", ps ? "\"" : "", why);
            return CW_EFORMAT;
        }
        int ri = intern_region(t, rs), si = intern_service(t, ss);
        if (ri < 0 || si < 0) {
            set_msg(msg, msg_size, "%s[%zu]: more than %d distinct %s", key, i,
                    ri < 0 ? NR_REGIONS_MAX : NR_SERVICES_MAX, ri < 0 ? "regions" : "services");
            return CW_ETOOBIG;
        }
        r.cls = NR_AWS;
        r.region = (uint16_t)ri;
        r.services = (uint64_t)1 << si;
        int rc = push_rec(t, &r);
        if (rc != 0) {
            set_msg(msg, msg_size, rc == CW_ETOOBIG ? "%s[%zu]: more than %d prefixes in one table"
                                                   : "%s[%zu]: out of memory (%d)",
                    key, i, rc == CW_ETOOBIG ? NR_PREFIXES_MAX : rc);
            return rc;
        }
    }
    return 0;
}

int nr_load_aws(struct nr_table *t, const char *path, char *msg, size_t msg_size)
{
    set_msg(msg, msg_size, "%s", "");
    if (!t || !path) {
        set_msg(msg, msg_size, "nr_load_aws: NULL argument");
        return CW_EINVAL;
    }
    if (t->built) {
        set_msg(msg, msg_size, "nr_load_aws: table already built");
        return CW_EINVAL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_msg(msg, msg_size, "%s: %s", path, strerror(errno));
        return CW_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        set_msg(msg, msg_size, "%s: not a regular file", path);
        fclose(f);
        return CW_EIO;
    }
    if ((uintmax_t)st.st_size > NR_FILE_MAX) {
        set_msg(msg, msg_size, "%s: %jd bytes, over the %u-byte limit", path, (intmax_t)st.st_size,
                (unsigned)NR_FILE_MAX);
        fclose(f);
        return CW_ETOOBIG;
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!root) {
        set_msg(msg, msg_size, "%s: line %d column %d: %s", path, jerr.line, jerr.column, jerr.text);
        return CW_EFORMAT;
    }
    /* Remember where this file started so a failure leaves the table as it was. Interned names
     * added meanwhile are dropped too (a later file may intern them again). */
    size_t n_recs = t->n_recs, n_regions = t->n_regions, n_services = t->n_services;
    char sub[NR_MSG_MAX];
    sub[0] = '\0';
    int rc = CW_EFORMAT;
    if (!json_is_object(root))
        snprintf(sub, sizeof sub, "top level is not an object");
    else if ((rc = load_array(t, root, "prefixes", "ip_prefix", 4, sub, sizeof sub)) == 0)
        rc = load_array(t, root, "ipv6_prefixes", "ipv6_prefix", 6, sub, sizeof sub);
    json_decref(root);
    if (rc != 0) {
        t->n_recs = n_recs;
        t->n_regions = n_regions;
        t->n_services = n_services;
        set_msg(msg, msg_size, "%s: %s", path, sub);
        return rc;
    }
    return 0;
}

static const char *trim(const char *s, const char *e, const char **out_end)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *out_end = e;
    return s;
}

/* Canonical text of a prefix: inet_ntop's form plus "/len". */
static void cidr_text(const struct nr_rec *r, char *buf, size_t size)
{
    char a[NR_IP_TEXT_MAX];
    if (!inet_ntop(r->family == 4 ? AF_INET : AF_INET6, r->net, a, sizeof a))
        a[0] = '\0';
    snprintf(buf, size, "%s/%u", a, (unsigned)r->len);
}

/* One entry of an allow-list, "CIDR[=label]", as trimmed spans of the spec. eq is NULL when the
 * entry has no label. */
struct allow_entry {
    const char *e, *e_end;  /* the whole entry, quoted in messages */
    const char *c, *c_end;  /* the range */
    const char *eq;         /* the '=' */
    const char *l, *l_end;  /* the label (when eq) */
};

static void allow_split(const char *p, const char *end, struct allow_entry *a)
{
    a->e = trim(p, end, &a->e_end);
    a->eq = memchr(a->e, '=', (size_t)(a->e_end - a->e));
    a->c = trim(a->e, a->eq ? a->eq : a->e_end, &a->c_end);
    a->l = a->l_end = NULL;
    if (a->eq)
        a->l = trim(a->eq + 1, a->e_end, &a->l_end);
}

/* Why entry a cannot be added to t (NULL when it can); *r receives its range. */
static const char *allow_why(const struct nr_table *t, const struct allow_entry *a, struct nr_rec *r)
{
    const char *why = NULL;
    memset(r, 0, sizeof *r);
    if (a->e == a->e_end)
        return "empty entry";
    if (t->n_allow >= NR_ALLOW_MAX)
        return "too many entries (NR_ALLOW_MAX)";
    if (parse_cidr(a->c, (size_t)(a->c_end - a->c), 1, r, &why) != 0)
        return why;
    if (r->len == 0)
        return "a /0 range would allow-list every address";
    if (a->eq && a->l == a->l_end)
        return "empty label after '='";
    if (a->eq && (size_t)(a->l_end - a->l) >= NR_LABEL_MAX)
        return "label longer than 63 characters";
    if (a->eq && !name_ok(a->l, (size_t)(a->l_end - a->l)))
        return "label with characters outside [A-Za-z0-9._-]";
    for (size_t i = 0; i < t->n_recs; i++) {
        const struct nr_rec *o = &t->recs[i];
        if (o->cls == NR_ALLOW && o->family == r->family && o->len == r->len && memcmp(o->net, r->net, 16) == 0)
            return "range listed twice";
    }
    return NULL;
}

/* Checks and adds entry number pos. The message quotes the entry (cut at NR_ENTRY_SHOWN). */
static int allow_add_entry(struct nr_table *t, const struct allow_entry *a, unsigned pos, char *msg,
                           size_t msg_size)
{
    struct nr_rec r;
    const char *why = allow_why(t, a, &r);
    if (why) {
        size_t shown = (size_t)(a->e_end - a->e);
        set_msg(msg, msg_size, "allow-list entry %u \"%.*s%s\": %s", pos,
                (int)(shown > NR_ENTRY_SHOWN ? NR_ENTRY_SHOWN : shown), a->e, shown > NR_ENTRY_SHOWN ? "..." : "",
                why);
        return t->n_allow >= NR_ALLOW_MAX ? CW_ETOOBIG : CW_EFORMAT;
    }
    char *lab = t->labels[t->n_allow];
    if (a->eq)
        snprintf(lab, NR_LABEL_MAX, "%.*s", (int)(a->l_end - a->l), a->l);
    else
        cidr_text(&r, lab, NR_LABEL_MAX);
    r.cls = NR_ALLOW;
    r.label = (uint16_t)t->n_allow;
    int rc = push_rec(t, &r);
    if (rc != 0) {
        set_msg(msg, msg_size, "allow-list entry %u: %s", pos,
                rc == CW_ETOOBIG ? "more than NR_PREFIXES_MAX prefixes in one table" : "out of memory");
        return rc;
    }
    t->n_allow++;
    return 0;
}

int nr_add_allow(struct nr_table *t, const char *spec, char *msg, size_t msg_size)
{
    set_msg(msg, msg_size, "%s", "");
    if (!t || !spec) {
        set_msg(msg, msg_size, "nr_add_allow: NULL argument");
        return CW_EINVAL;
    }
    if (t->built) {
        set_msg(msg, msg_size, "nr_add_allow: table already built");
        return CW_EINVAL;
    }
    size_t slen = strnlen(spec, NR_ALLOW_SPEC_MAX + 1);
    if (slen > NR_ALLOW_SPEC_MAX) {
        set_msg(msg, msg_size, "allow-list longer than %d characters", NR_ALLOW_SPEC_MAX);
        return CW_ETOOBIG;
    }
    const char *tend;
    const char *p = trim(spec, spec + slen, &tend);
    if (p == tend)
        return 0;
    if (!t->labels && !(t->labels = calloc(NR_ALLOW_MAX, sizeof *t->labels))) {
        set_msg(msg, msg_size, "out of memory");
        return CW_ENOMEM;
    }
    /* All or nothing: a failure drops the entries of this spec added before it. */
    size_t n_recs = t->n_recs, n_allow = t->n_allow;
    int rc = 0;
    for (unsigned pos = 1; rc == 0; pos++) {
        const char *comma = memchr(p, ',', (size_t)(tend - p));
        struct allow_entry a;
        allow_split(p, comma ? comma : tend, &a);
        rc = allow_add_entry(t, &a, pos, msg, msg_size);
        if (!comma)
            break;
        p = comma + 1;
    }
    if (rc != 0) {
        t->n_recs = n_recs;
        t->n_allow = n_allow;
    }
    return rc;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct nr_rec *x = a, *y = b;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    int c = memcmp(x->net, y->net, 16);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;  /* the enclosing (shorter) block first */
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* 2 for services named after one product, 1 for EC2, 0 for AMAZON (every AWS address). */
static int service_rank(const char *s)
{
    if (strcmp(s, "AMAZON") == 0)
        return 0;
    if (strcmp(s, "EC2") == 0)
        return 1;
    return 2;
}

static uint16_t primary_service(const struct nr_table *t, uint64_t set)
{
    int best = -1;
    for (int i = 0; i < (int)t->n_services; i++) {
        if (!(set & ((uint64_t)1 << i)))
            continue;
        if (best < 0)
            best = i;
        else {
            int rb = service_rank(t->services[best]), ri = service_rank(t->services[i]);
            if (ri > rb || (ri == rb && strcmp(t->services[i], t->services[best]) < 0))
                best = i;
        }
    }
    return (uint16_t)(best < 0 ? 0 : best);
}

/* An address inside a prefix is inside every AWS prefix that contains it: 3.80.16.0/23 is listed for
 * CHIME_VOICECONNECTOR alone but lies in 3.80.0.0/12, listed for AMAZON and EC2. So each AWS record's
 * service set gains the services of its enclosing AWS prefixes of the same region (a GLOBAL
 * CloudFront block enclosing regional EC2 blocks says nothing about those regions). Runs after
 * the primary service is chosen, which stays the one of the prefix itself. recs: one family,
 * sorted by rec_cmp, merged. */
static void inherit_services(struct nr_rec *recs, size_t n, unsigned width)
{
    struct nr_rec *stack[NR_NEST_MAX];
    size_t sp = 0;
    for (size_t i = 0; i < n; i++) {
        struct nr_rec *r = &recs[i];
        if (r->cls != NR_AWS)
            continue;
        nr_u128 lo = addr_to_u128(r->net, r->family);
        while (sp > 0) {
            const struct nr_rec *top = stack[sp - 1];
            nr_u128 tlo = addr_to_u128(top->net, top->family);
            if (lo <= (tlo | host_mask(top->len, width)))
                break;  /* sorted and nested-or-disjoint: starting inside means contained */
            sp--;
        }
        for (size_t k = 0; k < sp; k++)
            if (stack[k]->region == r->region)
                r->services |= stack[k]->services;
        stack[sp++] = r;
    }
}

struct sweep {
    nr_u128 *start;
    uint32_t *val;
    size_t n;
};

static void emit(struct sweep *s, nr_u128 at, uint32_t val)
{
    if (s->n > 0 && s->val[s->n - 1] == val)
        return;
    s->start[s->n] = at;
    s->val[s->n] = val;
    s->n++;
}

/* Flattens recs[0..n) (one family, sorted by rec_cmp) into disjoint intervals covering
 * [0, max]. out arrays need room for 2n+1 entries: each block adds at most two boundaries. */
static void sweep(const struct nr_rec *recs, size_t n, uint32_t base, unsigned width, struct sweep *out)
{
    struct {
        nr_u128 hi;
        uint32_t eff;  /* winner for addresses in this block not covered by a child */
    } stack[NR_NEST_MAX];
    size_t sp = 0;
    nr_u128 max = host_mask(0, width);
    nr_u128 cur = 0;
    int done = 0;  /* the last interval reached max: cur would overflow */
    out->n = 0;
    for (size_t i = 0; i <= n; i++) {
        nr_u128 lo = 0, hi = 0;
        int last = i == n;
        if (!last) {
            lo = addr_to_u128(recs[i].net, recs[i].family);
            hi = lo | host_mask(recs[i].len, width);
        }
        /* Close the open blocks that end before this one starts (all of them at the end). */
        while (sp > 0 && (last || stack[sp - 1].hi < lo)) {
            if (!done && cur <= stack[sp - 1].hi) {
                emit(out, cur, stack[sp - 1].eff);
                if (stack[sp - 1].hi == max)
                    done = 1;
                else
                    cur = stack[sp - 1].hi + 1;
            }
            sp--;
        }
        if (last)
            break;
        /* The gap before this block belongs to the enclosing block, or to nobody. */
        if (cur < lo)
            emit(out, cur, sp ? stack[sp - 1].eff : NONE);
        cur = lo;
        uint32_t me = base + (uint32_t)i, eff = me;
        if (sp > 0) {
            uint32_t pe = stack[sp - 1].eff;
            /* Nested, so a same-class parent is shorter: the child wins unless the parent's
             * winner is of a higher class. */
            if (pe != NONE && recs[pe - base].cls > recs[i].cls)
                eff = pe;
        }
        stack[sp].hi = hi;
        stack[sp].eff = eff;
        sp++;
    }
    if (!done)
        emit(out, cur, NONE);
}

static const struct {
    const char *cidr;
} private_ranges[] = {
    {"10.0.0.0/8"}, {"172.16.0.0/12"}, {"192.168.0.0/16"}, {"100.64.0.0/10"}, {"127.0.0.0/8"},
    {"169.254.0.0/16"}, {"::1/128"}, {"fc00::/7"}, {"fe80::/10"},
};

static void free_built(struct nr_table *t)
{
    free(t->v4_start);
    free(t->v4_val);
    free(t->v4_index);
    free(t->v6_start);
    free(t->v6_val);
    t->v4_start = t->v4_val = t->v4_index = t->v6_val = NULL;
    t->v6_start = NULL;
}

/* Adds the private ranges as records of their own class. */
static int add_private(struct nr_table *t, char *msg, size_t msg_size)
{
    for (size_t i = 0; i < sizeof private_ranges / sizeof private_ranges[0]; i++) {
        struct nr_rec r;
        const char *why;
        memset(&r, 0, sizeof r);
        const char *c = private_ranges[i].cidr;
        if (parse_cidr(c, strlen(c), 0, &r, &why) != 0) {
            set_msg(msg, msg_size, "built-in range %s: %s", c, why);
            return CW_EINVAL;
        }
        r.cls = NR_PRIVATE;
        int rc = push_rec(t, &r);
        if (rc != 0) {
            set_msg(msg, msg_size, "%s", rc == CW_ETOOBIG ? "more than NR_PREFIXES_MAX prefixes" : "out of memory");
            return rc;
        }
    }
    return 0;
}

/* Sorts the records and merges the records of one AWS prefix (one per service) into one; the first
 * region wins (AWS never lists a prefix under two regions in the 2026-08 file). */
static void merge_recs(struct nr_table *t)
{
    if (t->n_recs > 0)
        qsort(t->recs, t->n_recs, sizeof *t->recs, rec_cmp);
    size_t w = 0;
    for (size_t i = 0; i < t->n_recs; i++) {
        struct nr_rec *r = &t->recs[i];
        if (w > 0) {
            struct nr_rec *p = &t->recs[w - 1];
            if (r->cls == NR_AWS && p->cls == NR_AWS && p->family == r->family && p->len == r->len &&
                memcmp(p->net, r->net, 16) == 0) {
                p->services |= r->services;
                continue;
            }
        }
        t->recs[w++] = *r;
    }
    t->n_recs = w;
}

/* Chooses each AWS record's primary service, counts the AWS prefixes, and returns the number of
 * IPv4 records (they sort first). */
static size_t classify_recs(struct nr_table *t)
{
    size_t n4 = 0;
    t->aws_v4 = t->aws_v6 = 0;
    for (size_t i = 0; i < t->n_recs; i++) {
        struct nr_rec *r = &t->recs[i];
        if (r->family == 4)
            n4++;
        if (r->cls == NR_AWS) {
            r->service = primary_service(t, r->services);
            if (r->family == 4)
                t->aws_v4++;
            else
                t->aws_v6++;
        }
    }
    return n4;
}

/* Room for the sweep of n records: each block adds at most two boundaries. */
static int sweep_alloc(struct sweep *s, size_t n)
{
    s->start = malloc((2 * n + 1) * sizeof *s->start);
    s->val = malloc((2 * n + 1) * sizeof *s->val);
    return s->start && s->val ? 0 : CW_ENOMEM;
}

static void sweep_free(struct sweep *s)
{
    free(s->start);
    free(s->val);
}

/* Copies the intervals into the table's lookup arrays and builds the IPv4 index. */
static int publish(struct nr_table *t, const struct sweep *s4, const struct sweep *s6)
{
    t->v4_start = malloc(s4->n * sizeof *t->v4_start);
    t->v4_val = malloc(s4->n * sizeof *t->v4_val);
    t->v4_index = malloc((NR_V4_INDEX_SLOTS + 1) * sizeof *t->v4_index);
    t->v6_start = malloc(s6->n * sizeof *t->v6_start);
    t->v6_val = malloc(s6->n * sizeof *t->v6_val);
    if (!t->v4_start || !t->v4_val || !t->v4_index || !t->v6_start || !t->v6_val) {
        free_built(t);
        return CW_ENOMEM;
    }
    for (size_t i = 0; i < s4->n; i++) {
        t->v4_start[i] = (uint32_t)s4->start[i];
        t->v4_val[i] = s4->val[i];
    }
    t->n4 = s4->n;
    /* v4_index[h]: the interval holding address h<<16, so an address in slot h lies in one of the
     * intervals v4_index[h] .. v4_index[h+1]. */
    size_t k = 0;
    for (uint32_t h = 0; h < NR_V4_INDEX_SLOTS; h++) {
        uint32_t a = h << (32 - NR_V4_INDEX_BITS);
        while (k + 1 < t->n4 && t->v4_start[k + 1] <= a)
            k++;
        t->v4_index[h] = (uint32_t)k;
    }
    t->v4_index[NR_V4_INDEX_SLOTS] = (uint32_t)(t->n4 - 1);
    memcpy(t->v6_start, s6->start, s6->n * sizeof *s6->start);
    memcpy(t->v6_val, s6->val, s6->n * sizeof *s6->val);
    t->n6 = s6->n;
    return 0;
}

/* Flattens each family of the sorted, merged records into intervals and publishes them. */
static int build_lookup(struct nr_table *t, size_t n4)
{
    size_t n6 = t->n_recs - n4;
    struct sweep s4 = {0}, s6 = {0};
    int rc = CW_ENOMEM;
    if (sweep_alloc(&s4, n4) != 0 || sweep_alloc(&s6, n6) != 0)
        goto out;
    sweep(t->recs, n4, 0, 32, &s4);
    sweep(t->recs + n4, n6, (uint32_t)n4, 128, &s6);
    rc = publish(t, &s4, &s6);
out:
    sweep_free(&s4);
    sweep_free(&s6);
    return rc;
}

/* Keeps only what lookups need: the records and the names. A plain realloc rather than cw_grow,
 * which only grows; a failed shrink keeps the larger block, which is as correct. */
static void shrink_recs(struct nr_table *t)
{
    if (t->n_recs == 0)
        return;
    struct nr_rec *shrunk = realloc(t->recs, t->n_recs * sizeof *shrunk);
    if (shrunk) {
        t->recs = shrunk;
        t->cap_recs = t->n_recs;
    }
}

int nr_build(struct nr_table *t, char *msg, size_t msg_size)
{
    set_msg(msg, msg_size, "%s", "");
    if (!t || t->built) {
        set_msg(msg, msg_size, "nr_build: %s", t ? "table already built" : "NULL table");
        return CW_EINVAL;
    }
    int rc = add_private(t, msg, msg_size);
    if (rc != 0)
        return rc;
    merge_recs(t);
    size_t n4 = classify_recs(t);
    inherit_services(t->recs, n4, 32);
    inherit_services(t->recs + n4, t->n_recs - n4, 128);
    rc = build_lookup(t, n4);
    if (rc != 0) {
        set_msg(msg, msg_size, "out of memory building the lookup structure");
        return rc;
    }
    shrink_recs(t);
    t->built = 1;
    return 0;
}

struct nr_table *nr_table_ref(struct nr_table *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1u, memory_order_relaxed);
    return t;
}

void nr_table_unref(struct nr_table *t)
{
    if (!t)
        return;
    /* acq_rel: every reader's use of the table happens before the free by whoever drops last. */
    if (atomic_fetch_sub_explicit(&t->refs, 1u, memory_order_acq_rel) != 1)
        return;
    free_built(t);
    free(t->recs);
    free(t->labels);
    free(t);
}

/* ---------- lookup ---------- */

static int fill(const struct nr_table *t, uint32_t v, int family, struct nr_match *out)
{
    out->family = family == 4 ? AF_INET : AF_INET6;
    out->services = 0;
    out->region = out->service = out->label = "";
    if (v == NONE) {
        out->cls = NR_EXTERNAL;
        out->prefix_len = 0;
        memset(out->prefix, 0, sizeof out->prefix);
        return NR_EXTERNAL;
    }
    const struct nr_rec *r = &t->recs[v];
    out->cls = (enum nr_class)r->cls;
    out->prefix_len = r->len;
    memcpy(out->prefix, r->net, sizeof out->prefix);
    if (r->cls == NR_AWS) {
        out->region = t->regions[r->region];
        out->service = t->services[r->service];
        out->services = r->services;
    } else if (r->cls == NR_ALLOW) {
        out->label = t->labels[r->label];
    }
    return out->cls;
}

/* find_v4 and find_v6 are the two searches that do not go through cw_lower_bound, on purpose: they
 * are the hot path of every event (millions of lookups a second, README "Performance"), and a
 * comparison through a function pointer per step, with a branch the data decides, costs several
 * times the inlined conditional move over a fixed-width key. */
static uint32_t find_v4(const struct nr_table *t, uint32_t a)
{
    uint32_t b = t->v4_index[a >> (32 - NR_V4_INDEX_BITS)];
    uint32_t e = t->v4_index[(a >> (32 - NR_V4_INDEX_BITS)) + 1];
    const uint32_t *p = t->v4_start + b;
    size_t n = (size_t)(e - b) + 1;
    /* Invariant: p[0] <= a. The conditional move keeps the loop free of unpredictable branches. */
    while (n > 1) {
        size_t half = n / 2;
        p = (p[half] <= a) ? p + half : p;
        n -= half;
    }
    return t->v4_val[p - t->v4_start];
}

static uint32_t find_v6(const struct nr_table *t, nr_u128 a)
{
    const nr_u128 *p = t->v6_start;
    size_t n = t->n6;
    while (n > 1) {
        size_t half = n / 2;
        p = (p[half] <= a) ? p + half : p;
        n -= half;
    }
    return t->v6_val[p - t->v6_start];
}

static int lookup_bin(const struct nr_table *t, int family, const uint8_t *a, struct nr_match *out)
{
    if (family == 4) {
        uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
        return fill(t, find_v4(t, v), 4, out);
    }
    return fill(t, find_v6(t, addr_to_u128(a, 6)), 6, out);
}

static int not_ip(struct nr_match *out, int rc)
{
    memset(out, 0, sizeof *out);
    out->cls = NR_NOT_IP;
    out->region = out->service = out->label = "";
    return rc;
}

int nr_lookup(const struct nr_table *t, const char *ip_text, struct nr_match *out)
{
    if (!out)
        return CW_EINVAL;
    if (!t || !t->built)
        return not_ip(out, CW_EINVAL);
    if (!ip_text)
        return not_ip(out, NR_NOT_IP);
    size_t n = strnlen(ip_text, NR_IP_TEXT_MAX);
    /* IPv4 fast path: no copy to a 16-byte buffer and back. */
    uint32_t v4;
    if (n > 0 && (unsigned)(ip_text[0] - '0') <= 9 && parse_v4(ip_text, n, &v4) == 0)
        return fill(t, find_v4(t, v4), 4, out);
    int fam, mapped;
    uint8_t a[16];
    if (parse_ip_n(ip_text, n, &fam, a, &mapped) != 0)
        return not_ip(out, NR_NOT_IP);
    return lookup_bin(t, fam, a, out);
}

int nr_lookup_addr(const struct nr_table *t, int family, const void *addr, struct nr_match *out)
{
    if (!out)
        return CW_EINVAL;
    if (!t || !t->built || !addr || (family != AF_INET && family != AF_INET6))
        return not_ip(out, CW_EINVAL);
    const uint8_t *a = addr;
    if (family == AF_INET)
        return lookup_bin(t, 4, a, out);
    if (is_v4_mapped(a))
        return lookup_bin(t, 4, a + 12, out);
    return lookup_bin(t, 6, a, out);
}

int nr_class_string(const struct nr_match *m, char *buf, size_t size)
{
    if (!m || !buf || size == 0)
        return CW_EINVAL;
    int n;
    switch (m->cls) {
    case NR_AWS:
        n = snprintf(buf, size, "aws:%s:%s", m->region, m->service);
        break;
    case NR_ALLOW:
        n = snprintf(buf, size, "allowlisted:%s", m->label);
        break;
    case NR_PRIVATE:
        n = snprintf(buf, size, "private");
        break;
    case NR_EXTERNAL:
        n = snprintf(buf, size, "external");
        break;
    default:
        n = snprintf(buf, size, "not-ip");
        break;
    }
    return (n < 0 || (size_t)n >= size) ? CW_ENOSPC : 0;
}

int nr_match_has_service(const struct nr_table *t, const struct nr_match *m, const char *service)
{
    if (!t || !m || !service || m->cls != NR_AWS)
        return 0;
    for (size_t i = 0; i < t->n_services; i++)
        if (strcmp(t->services[i], service) == 0)
            return (m->services >> i) & 1u;
    return 0;
}

int nr_table_stats(const struct nr_table *t, struct nr_stats *out)
{
    if (!t || !out || !t->built)
        return CW_EINVAL;
    memset(out, 0, sizeof *out);
    out->aws_v4 = t->aws_v4;
    out->aws_v6 = t->aws_v6;
    out->aws_prefixes = t->aws_v4 + t->aws_v6;
    out->allow_entries = t->n_allow;
    out->intervals_v4 = t->n4;
    out->intervals_v6 = t->n6;
    out->bytes = sizeof *t + t->n_recs * sizeof *t->recs + (t->labels ? NR_ALLOW_MAX * sizeof *t->labels : 0) +
                 t->n4 * 2 * sizeof(uint32_t) + (NR_V4_INDEX_SLOTS + 1) * sizeof(uint32_t) +
                 t->n6 * (sizeof(nr_u128) + sizeof(uint32_t));
    return 0;
}

/* ---------- publication ---------- */

struct nr_slot *nr_slot_new(struct nr_table *t)
{
    struct nr_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->cur = t;
    return s;
}

void nr_slot_free(struct nr_slot *s)
{
    if (!s)
        return;
    nr_table_unref(s->cur);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

struct nr_table *nr_slot_get(struct nr_slot *s)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    struct nr_table *t = nr_table_ref(s->cur);
    pthread_mutex_unlock(&s->mu);
    return t;
}

void nr_slot_set(struct nr_slot *s, struct nr_table *t)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    struct nr_table *old = s->cur;
    s->cur = t;
    pthread_mutex_unlock(&s->mu);
    /* Outside the lock: freeing a large table must not stall requests taking the new one. */
    nr_table_unref(old);
}
