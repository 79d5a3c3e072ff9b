/* detect.h — the detection core: per-key state, events in, verdict out. Pure: no I/O, no clock.
 *
 * The state of one temporary access key is a set-like summary of every distinct event seen for it
 * (the store removes duplicates before det_apply is called). Every field is a union, a minimum or a
 * maximum, and every bounded set keeps its smallest members, so the state — and so the verdict —
 * is the same for every order in which the same events arrive. The verdict (det_judge) is computed
 * from the state alone; nothing about it is stored, so a late event that explains an earlier one
 * (a marked call from the same address) changes the verdict as if it had come first.
 */
#ifndef CW_DETECT_H
#define CW_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "netranges.h"

#define DET_INSIDE_IPS_MAX 8     /* addresses the key used with the runtime marker */
#define DET_CANDS_MAX 16         /* addresses of unexplained uses (outside candidates) */
#define DET_CAND_ACTIONS_MAX 8   /* distinct actions kept per candidate address */
#define DET_CAND_REGIONS_MAX 4   /* distinct regions kept per candidate address */
#define DET_CRED_LIFETIME (12 * 3600)  /* Lambda credentials live 12 h from issue */
#define DET_PENDING_WINDOW 3600  /* keys with no Lambda evidence: kept 1 h past their last event */
#define DET_LATE_MARGIN (2 * 3600)     /* extra life for late files (CloudTrail: 5 min typical, 30+ seen) */
/* Upper bound of det_encode's output. Every field encodes to at most twice its size in memory (a
 * string: a 1-2 byte length and at most cap-1 bytes; an integer: a varint of at most 10 bytes for
 * 8), so twice the state bounds it and stays a bound when fields are added. A fixed 8192 did not:
 * a key with all its candidates, long user agents and actions encodes to ~25 KB, and the engine
 * then failed every ingest of that key ("out of memory"), hiding the theft. */
#define DET_ENCODED_MAX (2 * sizeof(struct det_key) + 16)

enum det_severity { DET_SEV_NONE = 0, DET_SEV_LOW, DET_SEV_MEDIUM, DET_SEV_HIGH, DET_SEV_CRITICAL };

/* Machine-readable reasons of a verdict; det_reason_code/det_reason_text name them. */
enum det_reason {
    DET_R_ISSUED_BY_LAMBDA = 1u << 0,   /* the key's issuance by Lambda was seen */
    DET_R_RUNTIME_MARKER = 1u << 1,     /* the key carried the Lambda runtime marker */
    DET_R_OUTSIDE_ADDRESS = 1u << 2,    /* used from an address the runtime never used */
    DET_R_SUCCESSFUL_CALL = 1u << 3,    /* an outside call succeeded */
    DET_R_ALL_FAILED = 1u << 4,         /* every outside call failed */
    DET_R_SENSITIVE_ACTION = 1u << 5,   /* a successful sensitive action from outside */
    DET_R_DESKTOP_CLIENT = 1u << 6,     /* CLI/SDK on a desktop OS */
    DET_R_PRESIGNED_ONLY = 1u << 7,     /* only presigned S3 URLs */
    DET_R_COPIED_MARKER = 1u << 8,      /* a marked call from a non-AWS address: copied user agent */
    DET_R_INSIDE_AWS = 1u << 9,         /* an unmarked call from an AWS address the key never used */
    DET_R_FOREIGN_VPCE = 1u << 10,      /* through a VPC endpoint of an account outside the organisation */
    DET_R_NEW_REGION = 1u << 11,        /* outside use in a region the function does not run in */
    DET_R_COUNT = 12
};

/* One use outcome kept for evidence. */
struct det_use {
    int64_t at;
    char region[EV_REGION_MAX];
    char event_id[EV_ID_MAX];
    char action[EV_ACTION_MAX];
    char user_agent[EV_UA_MAX];
    uint8_t failed;
};

struct det_action {
    char name[EV_ACTION_MAX];
    uint8_t ok;  /* at least one successful call */
};

/* Unexplained uses from one source address. */
struct det_cand {
    char ip[EV_IP_MAX];
    uint32_t count;
    uint32_t ok_count;            /* calls that succeeded */
    uint32_t exempt_count;        /* Lambda worker / cold-start calls */
    uint32_t presigned_count;     /* presigned S3 URL calls */
    unsigned flags;               /* union of ev_flag over these uses */
    char vpce_account[EV_ACCOUNT_MAX];
    struct det_use first, last;   /* by (time, event id) */
    uint8_t n_actions;
    uint8_t actions_truncated;
    struct det_action actions[DET_CAND_ACTIONS_MAX];
    uint8_t n_regions;            /* regions these calls were made in (the smallest kept) */
    uint8_t regions_truncated;
    char regions[DET_CAND_REGIONS_MAX][EV_REGION_MAX];
};

struct det_key {
    char akid[EV_AKID_MAX];
    char account[EV_ACCOUNT_MAX];
    char region[EV_REGION_MAX];
    char function[EV_FUNCTION_MAX];
    char role_arn[EV_ARN_MAX];
    char runtime[EV_RUNTIME_MAX];
    char issue_event_id[EV_ID_MAX];
    uint8_t issued;               /* issuance by Lambda seen (certain) */
    uint8_t marked;               /* runtime marker seen (likely Lambda) */
    int64_t issued_at, expires, session_created;
    int64_t first_seen, last_seen;/* event times of any event of the key */
    /* inside: calls with the marker, plus Lambda's own worker / cold-start calls */
    uint32_t inside_count;
    int64_t inside_first, inside_last;
    uint8_t n_inside_ips;
    uint8_t inside_ips_truncated;
    char inside_ips[DET_INSIDE_IPS_MAX][EV_IP_MAX];
    uint32_t on_behalf_count;
    uint8_t n_cands;
    uint8_t cands_truncated;
    struct det_cand cands[DET_CANDS_MAX];
};

#define DET_ACCOUNTS_MAX 256  /* organisation accounts (CREDWATCH_ACCOUNTS) */

/* Network knowledge (domain.md §4): AWS ranges and the allow-list in a read-only table, and the
 * organisation's accounts. Both optional. The core stays pure: lookups in read-only data. */
struct det_ctx {
    const struct nr_table *net;                    /* NULL: no AWS ranges, no allow-list */
    int aws_ranges;                                /* net holds AWS's ranges (else only allow/private) */
    const char (*accounts)[EV_ACCOUNT_MAX];        /* NULL/0: VPC endpoint ownership not judged */
    size_t n_accounts;
};

/* Why an address is outside, per candidate (det_verdict.outside_why). */
enum det_why { DET_WHY_ADDRESS = 0, DET_WHY_COPIED_MARKER, DET_WHY_INSIDE_AWS, DET_WHY_FOREIGN_VPCE };

struct det_verdict {
    int finding;                  /* 1: a Lambda key with at least one outside use */
    int lambda;                   /* the key is Lambda's (issued or marked) */
    enum det_severity severity;
    unsigned reasons;             /* enum det_reason */
    uint32_t outside_count;
    int64_t outside_first, outside_last;
    uint32_t inside_count;        /* marked calls plus explained worker / cold-start calls */
    int64_t inside_first, inside_last;
    uint32_t allowlisted_count;   /* calls from allow-listed addresses */
    uint8_t n_allowed;            /* allow-listed candidate indices and their class strings */
    uint8_t allowed[DET_CANDS_MAX];
    char allowed_class[DET_CANDS_MAX][NR_CLASS_MAX];
    uint8_t n_outside;            /* outside candidate indices, in cands[] order */
    uint8_t outside[DET_CANDS_MAX];
    uint8_t outside_why[DET_CANDS_MAX];            /* enum det_why, parallel to outside[] */
    char outside_class[DET_CANDS_MAX][NR_CLASS_MAX]; /* network class, parallel to outside[] */
    const struct det_use *first_use, *last_use;  /* point into the judged det_key */
    const struct det_cand *first_cand, *last_cand;
};

/* Initialises an empty state for the key. */
void det_key_init(struct det_key *k, const char *akid);

/* Folds one event of this key into the state; the caller has removed duplicates.
 * Returns 1 if the state changed, 0 if the event is irrelevant to the key. ctx (may be NULL)
 * tells a marked call from a non-AWS address (a copied user agent) from a real one. */
int det_apply_ctx(struct det_key *k, const struct ev_event *ev, const struct det_ctx *ctx);
/* det_apply_ctx without network knowledge. */
int det_apply(struct det_key *k, const struct ev_event *ev);

/* Judges the state. ctx may be NULL. */
void det_judge(const struct det_key *k, const struct det_ctx *ctx, struct det_verdict *v);

/* Event time after which the state is of no use (credential expiry, or the pending window for
 * keys with no Lambda evidence), plus DET_LATE_MARGIN. The store adds an arrival-time floor. */
int64_t det_expires_at(const struct det_key *k);

/* Compact binary form for the stores. det_encode returns the length or a negative error;
 * det_decode returns 0 or -1 for a corrupt or foreign blob. */
int det_encode(const struct det_key *k, uint8_t *buf, size_t cap);
int det_decode(struct det_key *k, const uint8_t *buf, size_t len);

const char *det_severity_name(enum det_severity s);
int det_severity_parse(const char *s);  /* -1 if unknown */
const char *det_reason_code(unsigned bit);
const char *det_reason_text(unsigned bit);

/* Is "iam:CreateAccessKey" & co. a sensitive action (domain.md §4)? */
int det_action_sensitive(const char *action);

#endif
