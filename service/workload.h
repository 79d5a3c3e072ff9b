/* workload.h — which workload a temporary key belongs to, from one CloudTrail record: the profile
 * table of issue 14 (Lambda, ECS task, EC2 instance profile, EKS pod, CodeBuild) and its matchers.
 *
 * Pure data and string matching: no I/O, no allocation, no state beyond const tables, so any thread
 * may call it. The shapes matched, and the ones deliberately not matched, are docs/workloads.md
 * section 1 (sources there; sanitised copies in tests/data/workload-shapes.json). Where no public
 * sample of a field exists the matcher is marked unverified and does not match (the CodeBuild
 * issuer); nothing here relies on an unsampled field.
 *
 * classify.c calls wl_match once per record and keeps what it says in the ev_event (kind, id,
 * evidence masks); detect.c decides a key's kind from their union; wl_kinds_parse reads
 * CREDWATCH_WORKLOADS and `scan --workloads`.
 *
 * Errors: 0 or a negative CW_E* code (cw.h); msg gets a sentence naming the entry at fault.
 */
#ifndef CW_WORKLOAD_H
#define CW_WORKLOAD_H

#include <stddef.h>

enum wl_kind { WL_NONE = 0, WL_LAMBDA, WL_ECS, WL_EC2, WL_EKS, WL_CODEBUILD, WL_KIND_COUNT };

#define WL_MASK(k) (1u << (unsigned)(k))
#define WL_MASK_ALL (WL_MASK(WL_LAMBDA) | WL_MASK(WL_ECS) | WL_MASK(WL_EC2) | WL_MASK(WL_EKS) | WL_MASK(WL_CODEBUILD))

/* How strongly one record ties its key to a workload, strongest last (docs/workloads.md 5.3's
 * order): an AWS-written issuance; an AWS-written identity field on a use (ec2RoleDelivery); the
 * Lambda runtime marker; a session-name form (i-..., AWSCodeBuild-..., eks-...-<uuid>), which a
 * caller of AssumeRole can choose; the ECS marker, which CodeBuild and AWS service fleets carry too
 * (workloads.md 1.3). Markers are user agents: caller-controlled, they only ever add a kind. */
enum wl_evidence {
    WL_EV_NONE = 0,
    WL_EV_MARKER_WEAK,
    WL_EV_IDENTITY_WEAK,
    WL_EV_MARKER,
    WL_EV_IDENTITY,
    WL_EV_ISSUANCE,
};

/* The verdict a key's evidence allows (workloads.md 5.3): the full rules 1-10 for issued keys and
 * Lambda-marked keys, as today; only the outside-AWS rules (foreign VPC endpoint, allow-list,
 * external address) for anything weaker, because no home address or region is known. */
enum wl_verdict { WL_VERDICT_NONE = 0, WL_VERDICT_FULL, WL_VERDICT_OUTSIDE_AWS };

/* Bounds. Every string copied out of a record is cut at one of these, never read past. */
#define WL_ID_MAX 128      /* workload id, NUL included: a session name (AWS: at most 64) or IRSA's
                            * "<cluster oidc id>/<subject>"; longer is cut and wl_match.id_cut set */
#define WL_SESSION_MAX 64  /* AWS's bound on roleSessionName: a longer one matches no identity form */
#define WL_OIDC_ID_MAX 64  /* the id after oidc.eks.<region>.amazonaws.com/id/ (32 hex in practice) */
#define WL_REGION_MAX 31   /* a region name, as EV_REGION_MAX - 1 */
#define WL_NAME_QUOTE_MAX 32  /* bytes of an unknown list entry quoted in a message */

/* One record's fields, each named by its path; NULL when absent. The matcher reads no other. */
struct wl_rec {
    const char *event_source;      /* eventSource */
    const char *event_name;        /* eventName */
    const char *ui_type;           /* userIdentity.type */
    const char *ui_invoked_by;     /* userIdentity.invokedBy */
    const char *ui_arn;            /* userIdentity.arn: a use's session is its last part */
    const char *ui_user_name;      /* userIdentity.userName: IRSA's subject on WebIdentityUser */
    const char *ui_provider;       /* userIdentity.identityProvider */
    const char *ec2_role_delivery; /* userIdentity.sessionContext.ec2RoleDelivery */
    const char *session;           /* requestParameters.roleSessionName */
    const char *subject;           /* responseElements.subjectFromWebIdentityToken */
    const char *issued_akid;       /* responseElements.credentials.accessKeyId */
    const char *error_code;        /* errorCode */
    const char *user_agent;        /* userAgent */
};

/* What one record says. kind/evidence/id are the strongest evidence; the masks hold every kind a
 * marker, an identity field or a session form named (the detector keeps their unions per key).
 * What anchors a key's home network is the detector's decision (det_judge), not the record's. */
struct wl_match {
    enum wl_kind kind;
    enum wl_evidence evidence;
    unsigned marker_mask;   /* WL_MASK bits of every marker in the user agent */
    unsigned identity_mask; /* of AWS-written identity fields (ec2RoleDelivery) */
    unsigned session_mask;  /* of the session name's form (weak: the AssumeRole caller chooses it) */
    int id_cut;                          /* the id was longer than WL_ID_MAX - 1 */
    char id[WL_ID_MAX];                  /* "" when the record names none; cut on a character */
    char region[WL_REGION_MAX + 1];      /* IRSA issuance: the cluster's region, from the AWS-written
                                          * identityProvider host (the record's awsRegion is the STS
                                          * endpoint the caller chose); "" otherwise */
};

/* The profile of one kind. */
struct wl_profile {
    const char *name;               /* "ecs": settings, API, finding documents */
    const char *label;              /* "ECS": the product's name in texts (exports, messages) */
    const char *noun;               /* "task": finding texts */
    enum wl_verdict unissued;       /* the verdict without a seen issuance */
};

const struct wl_profile *wl_profile(enum wl_kind kind);  /* NULL for WL_NONE and out of range */
const char *wl_kind_name(enum wl_kind kind);             /* "ecs"; "none" for WL_NONE */
enum wl_kind wl_kind_parse(const char *name);            /* "ecs" -> WL_ECS; WL_NONE unknown or NULL */
const char *wl_evidence_name(enum wl_evidence ev);       /* "issuance", "marker_weak", ...; "none" */

/* Fills *m from the record: an issuance of a verified issuer first; else, for a call made with an
 * assumed role's key (userIdentity.type AssumedRole), its identity fields, session form and user
 * agent markers. A failed call issues nothing. Never fails: an unknown shape is WL_NONE. */
void wl_match(const struct wl_rec *r, struct wl_match *m);

/* The runtime of the Lambda marker exec-env/AWS_Lambda_<runtime>, a token of the user agent (after
 * its start or a separator: blank ( ) ; [ ]), copied up to the next separator and cut to cap - 1.
 * 1 when found, 0 otherwise (also for an empty runtime). The one reader of that marker. */
int wl_lambda_runtime(const char *ua, char *runtime, size_t cap);

/* The verdict a key with this (kind, strongest evidence) gets; WL_VERDICT_NONE without a kind.
 * det_judge takes its rules from here. */
enum wl_verdict wl_verdict(enum wl_kind kind, enum wl_evidence ev);

/* A list of kinds ("lambda,ecs"; "all"; blanks around names ignored; a name listed twice counts
 * once) into a WL_MASK set. NULL or blank is the default, all. An empty entry or an unknown name is
 * CW_EINVAL with msg naming it and its position. Names are lower case, as the API's enum. */
int wl_kinds_parse(const char *csv, unsigned *mask, char *msg, size_t msg_size);

#endif
