/* api_config.h — `credwatch serve` configuration: the CREDWATCH_* environment, overridden by
 * flags of the same meaning. Built once at start, validated whole, then read-only. */
#ifndef CW_API_CONFIG_H
#define CW_API_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "api_auth.h"
#include "api_cors.h"
#include "api_tls.h"
#include "evbuf.h"
#include "settings.h"

#define API_LISTEN_MAX 300            /* "host:port" text */
#define API_URL_MAX 1024              /* Redis URL */
#define API_THREADS_MAX 256
#define API_DURABLE_THREADS_PER_CPU 8   /* default threads on the durable store: requests waiting for */
#define API_DURABLE_THREADS_MIN 16      /* one commit share its fsync (api_config.c derive_threads) */
#define API_DEFAULT_LISTEN "127.0.0.1:8080"
#define API_DEFAULT_MAX_BODY ((size_t)32 << 20)
#define API_DEFAULT_MAX_INFLATED ((size_t)256 << 20)
#define API_DEFAULT_REDIS_TIMEOUT_MS 1000
#define API_DEFAULT_DRAIN_S 20
#define API_MIN_CLAIM_MS 1000          /* below, a slow receiver's event is taken over while still in flight */
#define API_MAX_CLAIM_MS 600000        /* above, a crash delays alerts by more than ten minutes */
#define API_MIN_BODY 1024             /* smaller caps would refuse any real CloudTrail file */
#define API_MAX_BODY ((size_t)4 << 30)
#define API_MAX_INFLATED ((size_t)64 << 30)
#define API_MAX_REDIS_TIMEOUT_MS 60000
/* CREDWATCH_INGEST_CHUNK_BYTES (default ENG_CHUNK_BYTES): below 4 KiB a chunk holds three or four events
 * and a large request becomes a store round every few records. A chunk is filled until it reaches its
 * size, so the buffer must hold it plus one event: at EVB_MAX_BYTES itself the push that would reach it
 * fails first, and a request with that many events would be answered "out of memory" (503, retried
 * forever). Half the buffer's bound leaves that room with margin. */
#define API_MIN_CHUNK_BYTES ((size_t)4 << 10)
#define API_MAX_CHUNK_BYTES (EVB_MAX_BYTES / 2)
#define API_MAX_DRAIN_S 3600

#define API_DEFAULT_CONN_TIMEOUT_S 75u  /* idle connections: above a load balancer's 60 s idle timeout */
#define API_MAX_CONN_TIMEOUT_S 3600
#define API_DEFAULT_HEADER_TIMEOUT_S 10u  /* forwarders send their headers in one packet */
#define API_DEFAULT_UPLOAD_TIMEOUT_S 60u  /* the default 32 MiB body at >= 0.55 MB/s */
#define API_DEFAULT_CONNECTIONS 4096u   /* lowered at start to fit RLIMIT_NOFILE */
#define API_MIN_CONNECTIONS 4
#define API_MAX_CONNECTIONS 1000000
#define API_MAX_INFLIGHT_INGEST 100000
#define API_INFLIGHT_BODIES 4           /* default inflight-bytes bound, in maximum bodies */

/* The embedded store chosen by CREDWATCH_STORE (Redis, when configured, is neither). */
enum api_store_kind { API_STORE_DURABLE = 0, API_STORE_MEMORY };

struct api_config {
    char listen[API_LISTEN_MAX];
    struct sockaddr_storage addr;     /* resolved listen address */
    socklen_t addr_len;
    int ipv6;
    int loopback;                     /* addr is a loopback address */
    char redis_url[API_URL_MAX];      /* "" = an embedded store (store_kind) */
    char redis_cluster[API_URL_MAX];  /* seeds of a Redis Cluster; exclusive with redis_url */
    char redis_ca_file[SET_PATH_MAX];      /* rediss://: "" = the system's CA store */
    char redis_client_cert[SET_PATH_MAX];  /* rediss://: "" = no client certificate */
    char redis_client_key[SET_PATH_MAX];   /* "" = in redis_client_cert */
    struct api_tokens ingest, read;
    int allow_unauth;
    unsigned threads;
    size_t max_body, max_inflated;
    size_t ingest_chunk_bytes;        /* eng_config.chunk_bytes of every worker's engine */
    int redis_timeout_ms;
    unsigned drain_s;
    unsigned conn_timeout_s;          /* MHD_OPTION_CONNECTION_TIMEOUT */
    unsigned header_timeout_s;        /* request headers complete within this (api_conn.c) */
    unsigned upload_timeout_s;        /* a body complete within this after its headers */
    size_t store_max_bytes;           /* the embedded store's memory bound */
    int store_kind;                   /* enum api_store_kind, when no Redis is configured */
    int store_given;                  /* CREDWATCH_STORE was set (not empty): refused beside a Redis URL */
    char data_dir[SET_PATH_MAX];      /* the durable store's directory, resolved (set_data_dir) */
    const char *data_dir_from;        /* which rule chose it: "CREDWATCH_DATA_DIR", "STATE_DIRECTORY", ... */
    uint64_t data_max_bytes;          /* the durable store's data file bound */
    unsigned outbox_claim_ms;         /* store_out_limits.claim_ms: a dead instance's events move on after it */
    unsigned max_connections;         /* MHD_OPTION_CONNECTION_LIMIT, before the fd-limit cap */
    unsigned max_inflight_ingest;     /* ingest requests admitted at once; 503 beyond */
    size_t max_inflight_bytes;        /* ingest body bytes buffered at once; 503 beyond */
    struct api_cors cors;             /* origins whose pages may call the read API (api_cors.h) */
    struct api_tls_files tls;         /* HTTPS when tls.cert is set (api_tls.h) */
    int help, print_routes;           /* --help / --print-routes: nothing else is validated */
};

/* Reads one variable; NULL when unset. The server passes getenv, tests a table. */
typedef const char *(*api_env_fn)(const char *name);

/* Fills c from env, then argv (argv[0] is the command name and is skipped). Returns 0, or
 * CW_ECONFIG with msg naming the variable or flag at fault. */
int api_config_load(struct api_config *c, int argc, char **argv, api_env_fn env, char *msg, size_t msg_size);

/* The --help text: every flag with its variable and default. */
void api_config_usage(FILE *out);

#endif
