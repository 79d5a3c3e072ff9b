/* event.h — the normalised CloudTrail event every decoder produces and the detector consumes.
 *
 * A decoder reads only the fields the verdict needs and classifies the record once, so the
 * detection core never sees JSON. Strings are bounded copies (NUL-terminated); a record whose
 * field does not fit its bound is skipped by the decoder with a reason, never truncated silently,
 * except the user agent, which is evidence only and is cut at EV_UA_MAX.
 */
#ifndef CW_EVENT_H
#define CW_EVENT_H

#include <stdint.h>

/* Bounds of the fields kept. AWS access key ids are 16-128 characters; temporary ones are 20. */
#define EV_ID_MAX 64        /* eventID: a GUID (36) in practice */
#define EV_AKID_MAX 32      /* access key id */
#define EV_ACCOUNT_MAX 16   /* 12-digit account id */
#define EV_REGION_MAX 32    /* e.g. ap-southeast-4 */
#define EV_IP_MAX 64        /* IPv4/IPv6 text, a service name or "AWS Internal" */
#define EV_ACTION_MAX 96    /* "iam:CreateAccessKey": service prefix + ":" + eventName */
#define EV_ERROR_MAX 64     /* errorCode */
#define EV_UA_MAX 160       /* user agent, cut: evidence only */
#define EV_RUNTIME_MAX 40   /* "python3.12" from exec-env/AWS_Lambda_python3.12 */
#define EV_FUNCTION_MAX 72  /* Lambda function names are at most 64 characters */
#define EV_WORKLOAD_ID_MAX 128 /* the workload's id (workload.h WL_ID_MAX): a session name (AWS: at most
                                * 64) or an EKS pod's "<cluster OIDC id>/<service account subject>"; cut */
#define EV_ARN_MAX 256      /* role ARN */
#define EV_VPCE_MAX 32      /* vpce-0123456789abcdef0 */
#define EV_COLD_ARN_MAX 128 /* arn:aws:lambda:<region>:<account>:function:<name, at most 64>; longer is cut
                             * and then matches no function (not exempt: the stricter reading) */

enum ev_kind {
    EV_OTHER = 0, /* counted, not used by the detector */
    EV_ISSUE,     /* a workload's credential issuance (workload.h): a key was issued */
    EV_USE,       /* a call made with a temporary (AssumedRole) key */
};

/* How a use was made; decided from the record alone (the network verdict is the detector's). */
enum ev_flag {
    EV_F_MARKED = 1u << 0,      /* user agent carries exec-env/AWS_Lambda_<runtime> */
    EV_F_WORKER = 1u << 1,      /* Lambda's own call with the key: awslambda-worker user agent */
    EV_F_COLDSTART = 1u << 2,   /* kms:Decrypt of the function's environment (encryption context) */
    EV_F_ON_BEHALF = 1u << 3,   /* invokedBy set, or the source is a service name / AWS Internal */
    EV_F_FAILED = 1u << 4,      /* errorCode present: still a use of the key */
    EV_F_PRESIGNED = 1u << 5,   /* S3 query-string authentication (presigned URL) */
    EV_F_DESKTOP = 1u << 6,     /* AWS CLI or SDK on a desktop OS (Windows, macOS) */
    EV_F_VPCE = 1u << 7,        /* came through a VPC endpoint */
    EV_F_WL_MARKED = 1u << 8,   /* user agent carries another workload's marker (exec-env/AWS_ECS_*):
                                 * weak, shared with CodeBuild and AWS fleets (docs/workloads.md 1.3) */
};

struct ev_event {
    enum ev_kind kind;
    unsigned flags;                  /* enum ev_flag */
    int64_t time;                    /* eventTime, seconds since the epoch (UTC) */
    int64_t expires;                 /* EV_ISSUE: credential expiry, seconds; 0 if unknown */
    int64_t session_created;         /* EV_USE: sessionContext creationDate, seconds; 0 if absent */
    char id[EV_ID_MAX];              /* eventID */
    char akid[EV_AKID_MAX];          /* EV_USE: the key used; EV_ISSUE: the key issued */
    char account[EV_ACCOUNT_MAX];
    char region[EV_REGION_MAX];
    char source_ip[EV_IP_MAX];
    char action[EV_ACTION_MAX];
    char error[EV_ERROR_MAX];
    char user_agent[EV_UA_MAX];
    char runtime[EV_RUNTIME_MAX];    /* the Lambda runtime named by the marker, if EV_F_MARKED */
    char workload_id[EV_WORKLOAD_ID_MAX]; /* session name (Lambda: the function; ECS: the task; EC2:
                                           * the instance), IRSA: cluster/subject; "" when unknown */
    char role_arn[EV_ARN_MAX];
    char vpce_account[EV_ACCOUNT_MAX];
    char cold_arn[EV_COLD_ARN_MAX];       /* EV_F_COLDSTART: the function ARN of the encryption context */
    /* Which workload (enum wl_kind, workload.h). EV_ISSUE: the issuer's kind (0 on a use). EV_USE:
     * what the record alone names, as WL_MASK bits by strength: wl_ident, AWS-written identity fields
     * (sessionContext.ec2RoleDelivery); wl_weak, the session name's form (i-..., AWSCodeBuild-...,
     * eks-...-<uuid>), which the caller of AssumeRole chooses; wl_markers, weak user-agent markers
     * (ECS). The Lambda marker stays EV_F_MARKED. The detector keeps their unions per key. */
    uint8_t wl_kind;
    uint8_t wl_ident, wl_weak, wl_markers;
};

#endif
