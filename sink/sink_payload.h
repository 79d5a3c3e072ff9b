/* sink_payload.h — the bodies each sink type posts, made from the finding document (the JSON text
 * GET /v1/findings/{id} returns), its revision and the kind of change. Pure: no I/O, no clock. */
#ifndef CW_SINK_PAYLOAD_H
#define CW_SINK_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "sink_config.h"

enum snk_kind { SNK_KIND_CREATED = 1, SNK_KIND_UPDATED = 2, SNK_KIND_STATUS = 3 };

#define SNK_BODY_MAX (256 * 1024)  /* Slack takes 40 KB of text, PagerDuty 512 KB: a finding is a few KB */
#define SNK_ID_MAX 128             /* a finding id goes into a header and a dedup key (PagerDuty: 255) */
#define SNK_SLACK_FIELD_MAX 200    /* bytes of one attacker-chosen value in a Slack message, before escaping */
#define SNK_PD_SUMMARY_MAX 1024    /* PagerDuty's limit on payload.summary */

/* Converts the finding document to another format: malloc'd JSON text, or NULL when it cannot.
 * service/export.c's exp_ocsf / exp_asff have this shape; the caller passes them in (snk_open), so
 * sink/ needs nothing of service/ but cw.h. */
typedef char *(*snk_format_fn)(const char *finding_json);

struct snk_formatters {
    snk_format_fn ocsf, asff;      /* NULL: a sink of that format fails each delivery (CW_EINVAL) */
};

struct snk_payload {
    char *body;                    /* malloc'd, NUL-terminated JSON */
    size_t len;
    char event[32];                /* finding.created | finding.updated | finding.status_changed */
    char idempotency_key[SNK_ID_MAX + 24];  /* "<finding id>:<revision>" */
};

/* "finding.created" .. "finding.status_changed"; NULL for an unknown kind. */
const char *snk_event_name(int kind);

/* Whether sink c takes the events of this finding: every event (created, updated, status changed)
 * of a finding whose severity is at least the sink's minimum. Severity never drops, so a sink that
 * saw a finding sees all its later changes. An unreadable document or severity is taken (1): the
 * delivery then fails visibly rather than an alert being dropped in silence. */
int snk_wants(const struct snk_conf *c, const char *finding_json);

/* The body for sink c (webhook in its format, Slack, PagerDuty). Returns 0, CW_EJSON (the document
 * is not a JSON object), CW_EINVAL (no usable "id", an unknown kind, no converter for the format or
 * it failed), CW_ETOOBIG (over SNK_BODY_MAX) or CW_ENOMEM; msg says which. */
int snk_payload_build(const struct snk_conf *c, const struct snk_formatters *fmt, const char *finding_json,
                      uint64_t revision, int kind, struct snk_payload *out, char *msg, size_t msg_size);
void snk_payload_free(struct snk_payload *p);

/* s made safe for Slack's mrkdwn: &, <, > as entities (no link, mention or command can start),
 * controls as spaces, ` as ' (it stays inside the code span it is shown in), cut at a character
 * boundary to max_bytes of input with "…" appended when cut. out needs 5 * max_bytes + 4 bytes. */
void snk_mrkdwn(const char *s, size_t max_bytes, char *out, size_t size);

/* PagerDuty's severity for a finding's: critical->critical, high->error, medium->warning,
 * low->info (unknown: error). */
const char *snk_pd_severity(const char *finding_severity);

#endif
