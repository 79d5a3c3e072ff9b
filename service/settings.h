/* settings.h — the settings `serve` and `scan` share, from the same variables:
 *   CREDWATCH_AWS_IP_RANGES  path of AWS's ip-ranges.json
 *   CREDWATCH_ALLOW_CIDRS    CIDR[=label],... (NAT gateways, corporate egress, trusted forwarders)
 *   CREDWATCH_ACCOUNTS       the organisation's account ids, comma-separated (VPC endpoint owners)
 *   CREDWATCH_WORKLOADS      the workloads judged: lambda,ecs,ec2,eks,codebuild or all (default all)
 *   CREDWATCH_STORE_MAX_BYTES  the embedded store's memory bound (each command has its default)
 * and the durable store's place, for `serve` and `backup`:
 *   CREDWATCH_DATA_DIR       the data directory (default: set_data_dir)
 *   CREDWATCH_DATA_MAX_BYTES the bound of its data file
 */
#ifndef CW_SETTINGS_H
#define CW_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "netranges.h"

#define SET_MSG_MAX 320
#define SET_STORE_BYTES_MAX ((size_t)64 << 30)  /* largest CREDWATCH_STORE_MAX_BYTES accepted */
/* Largest CREDWATCH_DATA_MAX_BYTES: LMDB maps the whole bound into the address space at once, and
 * 1 TiB (~400 M tracked keys at the default's ratio) is far past one machine's need while a small
 * fraction of a 47-bit address space. */
#define SET_DATA_BYTES_MAX ((uint64_t)1 << 40)
#define SET_PATH_MAX 1024                       /* a CREDWATCH_DATA_DIR path, with its NUL */
#define SET_DATA_DIR_SYSTEM "/var/lib/credwatch"  /* the default on a machine where it can be used */
#define SET_DATA_DIR_LOCAL "./credwatch-data"     /* the default otherwise: beside where it was started */

struct set_net {
    struct nr_table *table;     /* always built: without AWS ranges it still knows private/allow */
    int aws_ranges;             /* CREDWATCH_AWS_IP_RANGES was loaded */
    char accounts[DET_ACCOUNTS_MAX][EV_ACCOUNT_MAX];
    size_t n_accounts;
    unsigned kinds;             /* WL_MASK bits of the workloads judged; set_net_load: all */
};

/* Builds from the given values (NULL or "" = unset). On error returns a negative code and msg
 * names the variable and the problem; *out is left empty. */
int set_net_load(struct set_net *out, const char *ip_ranges_path, const char *allow_cidrs, const char *accounts,
                 char *msg, size_t msg_size);

/* Builds from the environment variables above, CREDWATCH_WORKLOADS included. */
int set_net_from_env(struct set_net *out, char *msg, size_t msg_size);

/* Reads a list of workloads (wl_kinds_parse: "lambda,ecs", "all"; unset or blank is all) into
 * *kinds. 0, or -1 with msg naming `name`, the entry and the names accepted. */
int set_workloads(const char *v, const char *name, unsigned *kinds, char *msg, size_t msg_size);

/* "lambda,ecs,ec2,eks,codebuild" of a WL_MASK set, for the start log and the scan report. */
void set_workloads_name(unsigned kinds, char *out, size_t size);

/* The detector's view of it (borrows the table). */
void set_net_ctx(const struct set_net *n, struct det_ctx *ctx);

void set_net_free(struct set_net *n);

/* Parses a CREDWATCH_STORE_MAX_BYTES value: decimal bytes in [STORE_MEM_MIN_BYTES,
 * SET_STORE_BYTES_MAX]. 0, or -1 with msg naming `name` and the range. */
int set_store_max_bytes(const char *v, const char *name, size_t *out, char *msg, size_t msg_size);

/* Parses a CREDWATCH_DATA_MAX_BYTES value: decimal bytes in [STORE_DURABLE_MIN_BYTES,
 * SET_DATA_BYTES_MAX]. 0, or -1 with msg naming `name` and the range. */
int set_data_max_bytes(const char *v, const char *name, uint64_t *out, char *msg, size_t msg_size);

/* The durable store's directory into out: `given` (CREDWATCH_DATA_DIR) when set and not empty;
 * else the first path of `state_dir` (systemd's $STATE_DIRECTORY, colon-separated when a unit
 * lists several); else `system_dir` (SET_DATA_DIR_SYSTEM) when it is a directory this process
 * may write, or is missing with a parent it may write (the store creates it); else
 * SET_DATA_DIR_LOCAL. *from names the rule that chose it (for the start log). 0, or -1 with msg
 * naming CREDWATCH_DATA_DIR when the path does not fit SET_PATH_MAX. */
int set_data_dir(const char *given, const char *state_dir, const char *system_dir, char *out, size_t size,
                 const char **from, char *msg, size_t msg_size);

#endif
