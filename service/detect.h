/* detect.h — the detection core: per-key state, events in, verdict out. Pure: no I/O, no clock.
 *
 * The state of one temporary access key is a set-like summary of every distinct event seen for it
 * (the store removes duplicates before det_apply is called). Every field is a union, a minimum, a
 * maximum or a sum, and every bounded set keeps its members by a fixed priority, so the state, and
 * so the verdict, is the same for every order in which the same events arrive. The verdict
 * (det_judge) is computed from the state alone. The one field that remembers history is
 * peak_severity, which the engine raises after each commit: a finding is never retracted and its
 * severity never drops, whatever is posted later (docs/detection.md, "Invariants").
 */
#ifndef CW_DETECT_H
#define CW_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "netranges.h"
#include "workload.h"

#define DET_CANDS_MAX 16         /* source addresses kept per key, by priority (enum det_prio) */
#define DET_CANDS_OWN_MIN 4      /* of them, always kept for addresses that can be the function's
                                  * (private, AWS), so outside ones cannot push the function's out */
#define DET_CAND_ACTIONS_MAX 8   /* distinct actions kept per address, by priority (sensitive, succeeded) */
#define DET_CAND_REGIONS_MAX 4   /* distinct event regions kept per address (the smallest kept) */
#define DET_EVICTED_REGIONS_MAX 4 /* AWS regions of addresses the key could not keep */
#define DET_CRED_LIFETIME (12 * 3600)  /* Lambda credentials live 12 h from issue; 12 h is also
                                        * the longest any role session lives (DurationSeconds) */
#define DET_PENDING_WINDOW 3600  /* keys with no workload evidence: kept 1 h past their last event */
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
    DET_R_OUTSIDE_ADDRESS = 1u << 2,    /* used from an address that is not the function's network */
    DET_R_SUCCESSFUL_CALL = 1u << 3,    /* an outside call succeeded */
    DET_R_ALL_FAILED = 1u << 4,         /* every outside call failed */
    DET_R_SENSITIVE_ACTION = 1u << 5,   /* a successful sensitive action from outside */
    DET_R_DESKTOP_CLIENT = 1u << 6,     /* CLI/SDK on a desktop OS */
    DET_R_PRESIGNED_ONLY = 1u << 7,     /* only presigned S3 URLs */
    DET_R_COPIED_MARKER = 1u << 8,      /* a marked call from a network that is never the function's */
    DET_R_INSIDE_AWS = 1u << 9,         /* a call from an AWS address that is not the key's own */
    DET_R_FOREIGN_VPCE = 1u << 10,      /* through a VPC endpoint of an account outside the organisation */
    DET_R_NEW_REGION = 1u << 11,        /* outside use in or from a region the function does not run in */
    DET_R_OTHER_ADDRESS = 1u << 12,     /* no AWS ranges: a marked call from an address not the key's first */
    DET_R_TRUNCATED = 1u << 13,         /* more addresses than the key keeps: evicted ones may be outside */
    DET_R_CONFLICTING_ISSUANCE = 1u << 14, /* two issuance records for one key (a real key has one) */
    DET_R_EXPLAINED = 1u << 15,         /* later evidence explains the outside uses; the finding stays */
    DET_R_CONTESTED_OWN = 1u << 16,     /* two addresses could each be the key's own: judged both ways */
    DET_R_ISSUED_BY_SERVICE = 1u << 17, /* an ECS, EC2 or EKS issuance of the key was seen */
    DET_R_WORKLOAD_MARKER = 1u << 18,   /* calls carried the workload's (weak) marker: exec-env/AWS_ECS_* */
    DET_R_WORKLOAD_IDENTITY = 1u << 19, /* ec2RoleDelivery or the session name's form names the workload */
    DET_R_ISSUED_OUTSIDE = 1u << 20,    /* an EKS pod's token was exchanged for the key outside AWS */
    DET_R_COUNT = 21
};

/* Priority of a source address in the key's bounded address set, highest kept first. It is a
 * function of the address, its VPC endpoint's account and the network tables alone, never of the
 * calls made from it, so an address that is not kept can never come back with part of its calls:
 * the kept set, and every count in it, is the same for every arrival order (detect.c). Addresses
 * that can never be the function's network rank above those that can, so a flood of
 * inside-looking addresses cannot push an outside one out. */
enum det_prio {
    DET_PRIO_ALLOWED = 0,   /* allow-listed: never a finding */
    DET_PRIO_PRIVATE,       /* a private address (VPC endpoint of the organisation or unjudged) */
    DET_PRIO_AWS,           /* an AWS address: the function's, Lambda's own, or another customer's */
    DET_PRIO_UNKNOWN,       /* AWS ranges not loaded, or not an address: cannot be told */
    DET_PRIO_EXTERNAL,      /* neither AWS, private nor allow-listed: never the function's */
    DET_PRIO_FOREIGN_VPCE,  /* through an endpoint of an account outside the organisation */
};

/* One use kept for evidence. */
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

/* Every use from one source address through one VPC endpoint owner (none: ""), on-behalf calls
 * excepted. Marked, unmarked and Lambda's own calls all count here; det_judge decides which
 * addresses are the function's network. */
struct det_cand {
    char ip[EV_IP_MAX];
    char vpce_account[EV_ACCOUNT_MAX];
    uint8_t prio;                 /* enum det_prio, fixed when the address is first seen */
    uint32_t count;
    uint32_t ok_count;            /* calls that succeeded */
    uint32_t exempt_count;        /* calls shaped like Lambda's worker / cold-start calls */
    uint32_t presigned_count;     /* presigned S3 URL calls */
    uint32_t marked_count;        /* calls with the runtime marker (not exempt-shaped) */
    unsigned flags;               /* union of ev_flag over these uses */
    char cold_arn[EV_COLD_ARN_MAX]; /* cold-start decrypts: the smallest function ARN named */
    uint8_t cold_arns;            /* distinct function ARNs named: 0, 1, 2 = two or more */
    struct det_use first, last;   /* by (time, event id) */
    int64_t marked_at;            /* earliest marked call, by (time, event id) */
    char marked_id[EV_ID_MAX];
    char marked_region[EV_REGION_MAX];
    uint8_t n_actions;
    uint8_t actions_truncated;
    struct det_action actions[DET_CAND_ACTIONS_MAX];
    uint8_t n_regions;            /* event regions of these calls (the smallest kept) */
    uint8_t regions_truncated;
    char regions[DET_CAND_REGIONS_MAX][EV_REGION_MAX];
};

/* An issuance record, as far as the verdict needs it. */
struct det_issue {
    int64_t at, expires;
    uint8_t kind;                 /* enum wl_kind of the issuer */
    char event_id[EV_ID_MAX];
    char account[EV_ACCOUNT_MAX];
    char region[EV_REGION_MAX];
    char workload_id[EV_WORKLOAD_ID_MAX];
    char role_arn[EV_ARN_MAX];
    char source_ip[EV_IP_MAX];    /* where the workload itself asked (EKS IRSA); "" for an AWS
                                   * service's issuance (its source is the service's name) */
};

struct det_key {
    char akid[EV_AKID_MAX];
    /* context: from the issuance when there is one, else the smallest seen in the uses */
    char account[EV_ACCOUNT_MAX];
    char workload_id[EV_WORKLOAD_ID_MAX]; /* Lambda: the function; ECS: the task; EC2: the instance */
    char role_arn[EV_ARN_MAX];
    char runtime[EV_RUNTIME_MAX]; /* of the earliest marked call, by (time, event id hash) */
    int64_t runtime_at;
    uint64_t runtime_id;          /* det_id_hash of that call's event id (8 bytes, not 36) */
    uint8_t issued;               /* a workload's issuance seen (certain; its kind: iss[0].kind) */
    uint8_t marked;               /* Lambda runtime marker seen (likely Lambda) */
    uint8_t wl_ident, wl_weak, wl_markers; /* unions of the uses' workload evidence (ev_event) */
    uint8_t marked_off_ec2;       /* a Lambda-marked call that AWS did not mark an IMDS (EC2) key's
                                   * use: contradicts ec2RoleDelivery, so that cannot outrank the marker */
    uint8_t token_outside;        /* an EKS pod's token was exchanged from outside AWS, by any of the
                                   * key's issuances (kept or not) */
    /* issuances: the two first in (time, content) order, how many, the latest valid expiry */
    uint8_t n_issues;             /* saturates at 255 */
    struct det_issue iss[2];
    int64_t expires;
    int64_t session_created, first_seen, last_seen;
    uint32_t on_behalf_count;
    uint8_t n_cands;
    struct det_cand cands[DET_CANDS_MAX];  /* by (prio desc, ip, vpce_account) */
    /* what the bounded address set could not keep (never comes back: see enum det_prio) */
    uint8_t evicted_prio;         /* 1 + the highest enum det_prio evicted; 0 = none */
    uint32_t evicted_count;        /* calls from addresses not kept */
    uint8_t n_evicted_regions, evicted_regions_truncated;
    char evicted_regions[DET_EVICTED_REGIONS_MAX][EV_REGION_MAX];
    /* the highest severity a committed verdict had (the engine sets it): severity never drops */
    uint8_t peak_severity;
};

#define DET_ACCOUNTS_MAX 256  /* organisation accounts (CREDWATCH_ACCOUNTS) */

/* Network knowledge (docs/detection.md): AWS ranges and the allow-list in a read-only table, and the
 * organisation's accounts. Both optional. The core stays pure: lookups in read-only data. */
struct det_ctx {
    const struct nr_table *net;                    /* NULL: no AWS ranges, no allow-list */
    int aws_ranges;                                /* net holds AWS's ranges (else only allow/private) */
    const char (*accounts)[EV_ACCOUNT_MAX];        /* NULL/0: VPC endpoint ownership not judged */
    size_t n_accounts;
    unsigned kinds;                                /* WL_MASK bits of the workloads judged
                                                    * (CREDWATCH_WORKLOADS); 0: all */
};

/* Why an address is outside, per candidate (det_verdict.outside_why). */
enum det_why { DET_WHY_ADDRESS = 0, DET_WHY_COPIED_MARKER, DET_WHY_INSIDE_AWS, DET_WHY_FOREIGN_VPCE,
               DET_WHY_OTHER_ADDRESS };

struct det_verdict {
    int finding;                  /* 1: a workload's key with outside use now, or one it had (explained) */
    int explained;                /* 1: the key had a finding; the evidence now explains every use */
    int workload;                 /* the key is a workload's (kind != WL_NONE): it can have a finding */
    int lambda;                   /* the key is Lambda's (kind == WL_LAMBDA) */
    enum wl_kind kind;            /* det_kind of the key */
    enum wl_verdict mode;         /* full rules, or the outside-AWS rules only (docs/workloads.md 5.3) */
    enum det_severity severity;   /* never below the key's peak_severity */
    enum det_severity current;    /* what the evidence alone gives now */
    unsigned reasons;             /* enum det_reason */
    char region[EV_REGION_MAX];   /* the function's region: the issuance's, else its network's */
    int home;                     /* index of the key's own address (earliest marked use), -1 none or
                                   * contested (DET_R_CONTESTED_OWN: judged with each in turn) */
    uint32_t outside_count;
    int64_t outside_first, outside_last;
    uint32_t inside_count;        /* calls from the function's network plus Lambda's own calls */
    int64_t inside_first, inside_last;
    uint8_t n_inside;             /* addresses judged the function's network */
    uint8_t inside[DET_CANDS_MAX];
    uint32_t allowlisted_count;   /* calls from allow-listed addresses */
    uint8_t n_allowed;            /* allow-listed candidate indices and their class strings */
    uint8_t allowed[DET_CANDS_MAX];
    char allowed_class[DET_CANDS_MAX][NR_CLASS_MAX];
    uint32_t unjudged_count;      /* outside-AWS mode: calls from AWS, private or unknown addresses */
    uint8_t n_unjudged;           /* their candidate indices: nothing tells them from the workload's */
    uint8_t unjudged[DET_CANDS_MAX];
    uint8_t n_outside;            /* outside candidate indices, in cands[] order */
    uint8_t outside[DET_CANDS_MAX];
    uint8_t outside_why[DET_CANDS_MAX];            /* enum det_why, parallel to outside[] */
    char outside_class[DET_CANDS_MAX][NR_CLASS_MAX]; /* network class, parallel to outside[] */
    const struct det_use *first_use, *last_use;  /* point into the judged det_key */
    const struct det_cand *first_cand, *last_cand;
};

/* Initialises an empty state for the key. The address slots (cands[], n_cands 0) are left as they
 * were: nothing reads a slot at or past n_cands, and one is cleared as it is taken. */
void det_key_init(struct det_key *k, const char *akid);

/* Folds one event of this key into the state; the caller has removed duplicates.
 * Returns 1 if the state changed, 0 if the event is irrelevant to the key. ctx (may be NULL)
 * gives each new address its priority (enum det_prio). */
int det_apply_ctx(struct det_key *k, const struct ev_event *ev, const struct det_ctx *ctx);
/* det_apply_ctx without network knowledge. */
int det_apply(struct det_key *k, const struct ev_event *ev);

/* The workload a key belongs to, from its state alone (docs/workloads.md 5.3): its first
 * issuance's kind; else an AWS-written identity (ec2RoleDelivery), unless a Lambda-marked call
 * went without it (AWS writes it on every use of an IMDS key: such a call contradicts it); else the
 * Lambda marker; else a session name's form; else a weak marker (ECS); WL_NONE without any. Within
 * one tier the lowest kind wins. *strongest (may be NULL) gets the evidence that decided. */
enum wl_kind det_kind(const struct det_key *k, enum wl_evidence *strongest);

/* Judges the state. ctx may be NULL. */
void det_judge(const struct det_key *k, const struct det_ctx *ctx, struct det_verdict *v);

/* After a commit: remembers the verdict's severity so that no later evidence lowers it. */
void det_remember(struct det_key *k, const struct det_verdict *v);

/* Is the change from state old (judged vo) to new (judged vn) one to tell a responder? 1 when a
 * finding appears, its severity rises, or an outside address, an action from an outside address
 * or a region of one is new (by address and endpoint account, not by index); 0 for a refresh
 * (times, counts). Pure and bounded (DET_CANDS_MAX x DET_CANDS_MAX x the per-address sets). Forged
 * records can only add events, never hide one: sets and severity only grow in the state. Of old it
 * reads only the addresses vo lists as outside (old->cands[vo->outside[i]]), and only when vo is a
 * finding: a caller may keep just those of an earlier state (the engine does). */
int det_notable(const struct det_key *old, const struct det_verdict *vo, const struct det_key *new,
                const struct det_verdict *vn);

/* Event time after which the state is of no use (credential expiry, or the pending window for
 * keys with no Lambda evidence), plus DET_LATE_MARGIN. The store adds an arrival-time floor. */
int64_t det_expires_at(const struct det_key *k);

/* 1 when every set of k that det_apply keeps in order is in that order, each member once: the
 * addresses by (priority, address, endpoint owner), the two kept issuances, the regions (an
 * address's and the evicted ones); an address's action names once each. 0 otherwise: a state
 * det_apply never makes, whose searches and ordered insertions would go wrong. */
int det_key_ordered(const struct det_key *k);

/* Compact binary form for the stores. det_encode returns the length or a negative error;
 * det_decode returns 0 or -1 for a corrupt or foreign blob (one det_key_ordered refuses included).
 * det_decode sets every field and the n_cands slots it reads, as det_key_init leaves the others. */
int det_encode(const struct det_key *k, uint8_t *buf, size_t cap);
int det_decode(struct det_key *k, const uint8_t *buf, size_t len);

const char *det_severity_name(enum det_severity s);
int det_severity_parse(const char *s);  /* -1 if unknown */
const char *det_reason_code(unsigned bit);
const char *det_reason_text(unsigned bit);
const char *det_reason_text_for(unsigned bit, enum wl_kind kind);  /* in the workload's words */

/* A 64-bit hash of an event id (FNV-1a, never 0): an order between events that keeps 8 bytes. */
uint64_t det_id_hash(const char *id);

/* An event's identity for removing duplicates: its id and every field the detector reads (FNV-1a,
 * never 0). A redelivered record (another file, EventBridge instead of S3) decodes to the same
 * event and so the same identity; a forged record that reuses a real one's event id with other
 * content does not, so it can never make the real one count as already seen. */
uint64_t det_event_hash(const struct ev_event *ev);

/* Is "iam:CreateAccessKey" & co. a sensitive action (docs/detection.md)? */
int det_action_sensitive(const char *action);

#endif
