/* sink.h — "sinks only deliver": one call posts one finding event to one sink (webhook, Slack,
 * PagerDuty) and says how it went. No queue, no loop, no store here: the caller takes events from
 * the store's outbox, asks snk_wants, calls snk_deliver, and acts on res->verdict with
 * sink_retry.h (snk_backoff_ms, snk_give_up). Start-up: snk_global_init once, snk_config_load,
 * snk_describe for the log; then one struct snk per sink per delivery thread. */
#ifndef CW_SINK_H
#define CW_SINK_H

#include <stdint.h>

#include "sink_config.h"
#include "sink_http.h"
#include "sink_payload.h"
#include "sink_retry.h"

struct snk;

/* A sink of configuration c (copied) with its own HTTP handle; fmt (may be NULL, copied) converts
 * for webhook sinks of format ocsf/asff. 0 or CW_ENOMEM. */
int snk_open(const struct snk_conf *c, const struct snk_formatters *fmt, struct snk **out);
void snk_close(struct snk *s);
const struct snk_conf *snk_conf_of(const struct snk *s);

/* Builds the body for finding_json (the document GET /v1/findings/{id} returns) at revision and
 * kind (enum snk_kind), signs it for a webhook (Credwatch-Signature with t = now_ms / 1000,
 * Credwatch-Event, Credwatch-Idempotency-Key) and POSTs it. res gets the HTTP outcome and
 * res->verdict (enum snk_verdict). Returns 0 when a response came (whatever its status),
 * CW_EUNAVAIL on a transport failure (verdict SNK_RETRY), or the payload's error (CW_EJSON,
 * CW_EINVAL, CW_ETOOBIG: verdict SNK_PERMANENT, res->error says why; CW_ENOMEM: SNK_RETRY). */
int snk_deliver(struct snk *s, const char *finding_json, uint64_t revision, int kind, int64_t now_ms,
                struct snk_result *res);

#endif
