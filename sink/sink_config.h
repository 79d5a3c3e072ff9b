/* sink_config.h — the sinks a deployment names, read once from the environment and checked at start:
 *   CREDWATCH_SINKS="name1,name2"              names [a-z0-9_-]{1,31}, at most SNK_MAX, no repeats
 *   CREDWATCH_SINK_<NAME>_TYPE                 webhook | slack | pagerduty   (<NAME>: upper case, '-' as '_')
 *   CREDWATCH_SINK_<NAME>_URL                  http(s); pagerduty defaults to SNK_PAGERDUTY_URL
 *   CREDWATCH_SINK_<NAME>_SECRET               webhook: the HMAC key, required, >= SNK_SECRET_MIN bytes
 *   CREDWATCH_SINK_<NAME>_ROUTING_KEY          pagerduty: required
 *   CREDWATCH_SINK_<NAME>_FORMAT               webhook: credwatch (default) | ocsf | asff
 *   CREDWATCH_SINK_<NAME>_MIN_SEVERITY         low (default) | medium | high | critical
 *   CREDWATCH_SINK_<NAME>_CA_FILE              a CA bundle for a private receiver
 *   CREDWATCH_SINK_<NAME>_TIMEOUT_MS           whole request, default 10000, 100-60000
 *   CREDWATCH_SINK_<NAME>_CONNECT_TIMEOUT_MS   default 3000, 100-60000 and at most TIMEOUT_MS
 *   CREDWATCH_SINK_<NAME>_GIVE_UP_SECONDS      dead-letter age, default SNK_GIVE_UP_S, 60-604800
 *   CREDWATCH_SINK_<NAME>_FINDING_BASE_URL     slack, pagerduty: link base, the finding id is appended
 * A variable the sink's type does not use is an error too: a misspelt setup fails at start, not at 3 am. */
#ifndef CW_SINK_CONFIG_H
#define CW_SINK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SNK_MAX 8               /* sinks per deployment: each costs a connection per delivery thread */
#define SNK_NAME_MAX 31         /* a name is part of variable names and of log lines */
#define SNK_URL_MAX 2048        /* what receivers and proxies reliably accept in a request line */
#define SNK_SECRET_MIN 16       /* an HMAC key shorter than this is guessable offline from one signature */
#define SNK_SECRET_MAX 512
#define SNK_PATH_MAX 4096
#define SNK_MSG_MAX 320         /* room for a variable name and the problem */
#define SNK_GIVE_UP_S 86400     /* an alert a day late is history: dead-letter it */
#define SNK_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"

enum snk_type { SNK_WEBHOOK = 1, SNK_SLACK = 2, SNK_PAGERDUTY = 3 };
enum snk_format { SNK_FMT_CREDWATCH = 0, SNK_FMT_OCSF = 1, SNK_FMT_ASFF = 2 };
/* The finding's severities, in order (det_severity_name's words). */
enum snk_severity { SNK_SEV_LOW = 1, SNK_SEV_MEDIUM = 2, SNK_SEV_HIGH = 3, SNK_SEV_CRITICAL = 4 };

struct snk_conf {
    char name[SNK_NAME_MAX + 1];
    enum snk_type type;
    enum snk_format format;
    int min_severity;           /* enum snk_severity */
    char url[SNK_URL_MAX];
    char secret[SNK_SECRET_MAX + 1];
    char routing_key[SNK_SECRET_MAX + 1];
    char ca_file[SNK_PATH_MAX]; /* "" = libcurl's default CA store */
    char finding_base_url[SNK_URL_MAX];
    long timeout_ms, connect_timeout_ms;
    int64_t give_up_s;
};

struct snk_confs {
    size_t n;
    struct snk_conf sink[SNK_MAX];
};

/* Reads the variables above through get (NULL: getenv). CREDWATCH_SINKS unset or empty: no sinks.
 * Returns 0, or CW_ECONFIG with msg naming the variable and the problem (never a secret's value). */
int snk_config_load(struct snk_confs *out, const char *(*get)(const char *name), char *msg, size_t msg_size);

/* Every CREDWATCH_SINK_* variable of env (as environ: "NAME=value", NULL-terminated) must be a
 * setting of a sink of confs: a misspelt suffix (..._MIN_SEVERTY) or a sink missing from
 * CREDWATCH_SINKS would otherwise be ignored without a word. 0, or CW_ECONFIG naming the variable. */
int snk_config_check_env(const struct snk_confs *confs, char *const *env, char *msg, size_t msg_size);

/* One line for the start log: name, type, URL without userinfo, query and fragment (a Slack URL
 * without its path, which is the credential), the settings; secrets as "[redacted]". */
void snk_describe(const struct snk_conf *c, char *out, size_t size);

/* "low".."critical" -> enum snk_severity, or -1. */
int snk_severity_parse(const char *s);
const char *snk_type_name(enum snk_type t);
const char *snk_format_name(enum snk_format f);

#endif
