/* api_backup.h — GET /v1/backup: a consistent, compacted copy of the durable store made while it
 * serves (store_lmdb_backup into API_BACKUP_TMP inside the data directory), streamed as
 * application/octet-stream and removed. One backup at a time. */
#ifndef CW_API_BACKUP_H
#define CW_API_BACKUP_H

#include <stddef.h>

#include "api_http.h"

/* The copy's directory inside the data directory: on the same file system (no cross-device
 * surprise), and already covered by the lock of the one process that owns the directory. */
#define API_BACKUP_TMP "backup.tmp"
#define API_BACKUP_BLOCK ((size_t)256 << 10)  /* bytes read from the copy per write to the client */

/* Removes dir (a copy's directory: its files, then itself); a missing dir is fine. 0, or -1 with
 * msg saying what could not be removed. */
int api_backup_remove(const char *dir, char *msg, size_t msg_size);

/* Removes the copy a process killed during a backup left in data_dir. 0, or -1 with msg. */
int api_backup_clean(const char *data_dir, char *msg, size_t msg_size);

/* The route (read token): 200 with the copy's bytes; 409 when another backup runs or the store
 * is not the durable one; 503 when the copy cannot be made (disk full: the store's message). */
enum MHD_Result api_backup_get(struct api_req *r);

#endif
