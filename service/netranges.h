/* netranges.h — network class of a source address: allow-listed, AWS (region, service), private,
 * external, or not an address at all.
 *
 * A table is built once (nr_table_new, nr_load_aws, nr_add_allow, nr_build) and is read-only from
 * then on, so any number of threads may call nr_lookup on it without locking. A reload (SIGHUP)
 * builds a new table and publishes it through an nr_slot; a request takes its own reference with
 * nr_slot_get and drops it with nr_table_unref when it ends, so the table it started with stays
 * alive however many reloads happen meanwhile.
 *
 * Precedence, highest first: allow-list, AWS, private, external. Within one class the longest
 * matching prefix wins. An allow-listed range wins over AWS even when the AWS prefix is longer:
 * the operator's declaration of "this is ours" (a NAT gateway's EIP is an AWS EC2 address) is the
 * fact the detector needs.
 *
 * AWS lists one prefix several times, once per service (AMAZON, then EC2, S3, ...). All services
 * are kept: a match's service set is the union of the services of the matched prefix and of every
 * enclosing AWS prefix of the same region (3.80.16.0/23 is listed for CHIME_VOICECONNECTOR only but
 * lies in 3.80.0.0/12, AMAZON and EC2), so nr_match_has_service(.., "EC2") answers "is this an EC2
 * address of that region". The class string names one service, the most specific of the matched
 * prefix's own listing: any service other than AMAZON and EC2 first (alphabetically first if there
 * are several), then EC2, then AMAZON, which is the superset of all AWS addresses. A prefix listed
 * under two regions (never, in the 2026-08 file) keeps the region it was first listed with.
 *
 * Lookup structure: per family, the prefixes are flattened into sorted disjoint intervals, each
 * carrying the winning prefix, and looked up by branch-free binary search (IPv4: a 64 Ki-slot
 * index on the top 16 bits narrows the search first). See netranges.c.
 *
 * Errors: functions return 0 or a negative CW_E* code (cw.h); msg (may be NULL) gets a sentence.
 */
#ifndef CW_NETRANGES_H
#define CW_NETRANGES_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"

#define NR_PREFIXES_MAX 200000     /* AWS + allow entries in one table (the 2026-08 list: 16,826) */
#define NR_ALLOW_MAX 1024          /* entries in the allow-list (CREDWATCH_ALLOW_CIDRS) */
#define NR_ALLOW_SPEC_MAX 65536    /* characters of one allow-list spec */
#define NR_LABEL_MAX 64            /* allow-list label, with its NUL; [A-Za-z0-9._-] */
#define NR_REGION_MAX 32           /* AWS region name, with its NUL (longest today: 14) */
#define NR_SERVICE_MAX 48          /* AWS service name, with its NUL (longest today: 31) */
#define NR_REGIONS_MAX 1024        /* distinct regions in one table (today: 43) */
#define NR_SERVICES_MAX 64         /* distinct services in one table: a 64-bit set (today: 27) */
#define NR_FILE_MAX (64u << 20)    /* size of an ip-ranges.json file (today: 2.6 MB) */
#define NR_IP_TEXT_MAX 46          /* INET6_ADDRSTRLEN: longer text is never an address */
#define NR_CLASS_MAX 96            /* enough for any nr_class_string output */
#define NR_MSG_MAX 256             /* a message buffer that holds any message in full */

enum nr_class {
    NR_NOT_IP = 0,    /* not an address: "lambda.amazonaws.com", "AWS Internal", "" */
    NR_EXTERNAL,      /* an address in none of the ranges below */
    NR_PRIVATE,       /* RFC 1918, 100.64/10, 127/8, 169.254/16, ::1, fc00::/7, fe80::/10 */
    NR_AWS,           /* a prefix of AWS's ip-ranges.json: region and service set */
    NR_ALLOW,         /* an allow-listed range: label set */
};

/* The answer of a lookup. The strings are borrowed from the table (valid while the caller holds a
 * reference to it) and are "" when they do not apply, never NULL. */
struct nr_match {
    enum nr_class cls;
    int family;             /* AF_INET or AF_INET6 (of the address, after IPv4-mapped unmapping); 0 for NR_NOT_IP */
    uint8_t prefix_len;     /* the matched prefix; 0 for NR_EXTERNAL and NR_NOT_IP */
    uint8_t prefix[16];     /* its network address (IPv4 in the first 4 bytes) */
    uint64_t services;      /* NR_AWS: service set, see above; bits index the table's service names */
    const char *region;     /* NR_AWS: "us-east-1", "GLOBAL", ... */
    const char *service;    /* NR_AWS: the most specific service (see above) */
    const char *label;      /* NR_ALLOW: the label, or the range itself ("203.0.113.0/24") when unlabelled */
};

struct nr_table;

/* A new, empty table being built, holding one reference; NULL when out of memory. */
struct nr_table *nr_table_new(void);

/* Adds every prefix of an AWS ip-ranges.json file: "prefixes" (ip_prefix, region, service) and
 * "ipv6_prefixes" (ipv6_prefix, ...). May be called more than once; entries accumulate. On error
 * nothing of this file is kept (the table is as it was), so a failed reload changes nothing. */
int nr_load_aws(struct nr_table *t, const char *path, char *msg, size_t msg_size);

/* Adds the allow-list "CIDR[=label],CIDR[=label],..." (spaces around entries and labels are
 * ignored; an empty spec adds nothing). A bare address is a host range (/32, /128). A range with
 * host bits set (198.51.100.7/24) is refused rather than widened or narrowed silently; so are
 * empty entries, bad labels and a range listed twice. All or nothing: on error no entry is added,
 * and msg names the entry (its 1-based position and text). */
int nr_add_allow(struct nr_table *t, const char *spec, char *msg, size_t msg_size);

/* Freezes the table: builds the lookup structure and releases the build-time memory. After it,
 * only lookups are allowed; nr_load_aws and nr_add_allow fail with CW_EINVAL. */
int nr_build(struct nr_table *t, char *msg, size_t msg_size);

/* Takes one more reference (returns t). Thread-safe. */
struct nr_table *nr_table_ref(struct nr_table *t);
/* Drops one reference; the last one frees the table. Thread-safe; NULL is ignored. */
void nr_table_unref(struct nr_table *t);

/* Classifies the text of a sourceIPAddress. Returns the class (>= 0), also set in out->cls, or
 * CW_EINVAL (out cleared to NR_NOT_IP) when t is NULL or not built. IPv4 is dotted-quad only
 * (no leading zeros, no shorthand); IPv6 is any RFC 4291 text form without a zone ("%eth0");
 * an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as the IPv4 address. */
int nr_lookup(const struct nr_table *t, const char *ip_text, struct nr_match *out);

/* Same, from binary: family AF_INET (addr: 4 bytes, network order) or AF_INET6 (16 bytes).
 * CW_EINVAL for another family. */
int nr_lookup_addr(const struct nr_table *t, int family, const void *addr, struct nr_match *out);

/* Parses address text as nr_lookup does: 0 and *family/addr set (IPv4-mapped IPv6 is returned as
 * AF_INET), or CW_EFORMAT when the text is not an address. */
int nr_parse_ip(const char *text, int *family, uint8_t addr[16]);

/* The class as the findings show it: "aws:<region>:<service>", "allowlisted:<label>", "private",
 * "external", or "not-ip". 0, or CW_ENOSPC when buf is too small (NR_CLASS_MAX always suffices). */
int nr_class_string(const struct nr_match *m, char *buf, size_t size);

/* 1 when m is NR_AWS and its service set holds the service (e.g. "EC2"), else 0. */
int nr_match_has_service(const struct nr_table *t, const struct nr_match *m, const char *service);

/* Counts of a built table, for logs and /metrics. */
struct nr_stats {
    size_t aws_prefixes;    /* distinct AWS prefixes (a prefix listed for several services counts once) */
    size_t aws_v4, aws_v6;
    size_t allow_entries;
    size_t intervals_v4, intervals_v6;  /* size of the lookup structure */
    size_t bytes;           /* memory held by the built table */
};
int nr_table_stats(const struct nr_table *t, struct nr_stats *out);

/* The published table, swapped on reload. nr_slot_get and nr_slot_set may run concurrently from
 * any threads. A reference count alone is not enough for this: between reading the pointer and
 * incrementing the count, a reload could free the table; the slot's lock closes that window (it is
 * held for a pointer copy and an increment, once per request, never during a lookup). */
struct nr_slot;

/* A new slot holding t (its reference is taken over; t may be NULL). NULL when out of memory. */
struct nr_slot *nr_slot_new(struct nr_table *t);
/* Drops the slot's reference to its table and frees the slot. No get/set may run concurrently. */
void nr_slot_free(struct nr_slot *s);
/* A new reference to the current table (release it with nr_table_unref), or NULL if none. */
struct nr_table *nr_slot_get(struct nr_slot *s);
/* Publishes t (its reference is taken over) and drops the slot's reference to the previous table,
 * which lives on until the last request holding it ends. */
void nr_slot_set(struct nr_slot *s, struct nr_table *t);

#endif
