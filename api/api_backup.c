/* api_backup.c — see api_backup.h. The copy is opened and then unlinked at once: what is streamed
 * is an open file nobody else can see, so a client that goes away, or a process that dies while
 * sending, leaves nothing behind but the space the kernel gives back when the descriptor closes. */
#include "api_backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_log.h"
#include "cw.h"
#include "settings.h"

/* What the response's callbacks own: the unlinked copy and the server's one-backup flag. */
struct bk_stream {
    int fd;
    atomic_int *busy;
};

int api_backup_remove(const char *dir, char *msg, size_t msg_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(msg, msg_size, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char path[SET_PATH_MAX + 64];
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* the copy holds files only (data.mdb): anything else is not ours to delete */
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && rc == 0) {
            snprintf(msg, msg_size, "%s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) {
        snprintf(msg, msg_size, "%s: %s", dir, strerror(errno));
        rc = -1;
    }
    return rc;
}

int api_backup_clean(const char *data_dir, char *msg, size_t msg_size)
{
    char dir[SET_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", data_dir, API_BACKUP_TMP);
    return api_backup_remove(dir, msg, msg_size);
}

static ssize_t bk_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct bk_stream *b = cls;
    ssize_t n;
    do
        n = pread(b->fd, buf, max, (off_t)pos);
    while (n < 0 && errno == EINTR);
    /* MHD asks only within the announced size: an end of file there (or an error) is a broken
     * copy, and the connection is closed rather than a short backup passed off as whole */
    return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void bk_free(void *cls)
{
    struct bk_stream *b = cls;
    close(b->fd);
    atomic_store(b->busy, 0);
    free(b);
}

/* Makes the copy in data_dir/API_BACKUP_TMP and opens its data file, then unlinks the copy.
 * Returns the descriptor (size in *size), or -1 with msg. */
static int make_copy(struct store *st, const char *data_dir, off_t *size, char *msg, size_t msg_size)
{
    char dir[SET_PATH_MAX + 32], file[SET_PATH_MAX + 48], why[256] = "";
    snprintf(dir, sizeof dir, "%s/%s", data_dir, API_BACKUP_TMP);
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    if (api_backup_remove(dir, why, sizeof why) || store_lmdb_backup(st, dir, why, sizeof why)) {
        snprintf(msg, msg_size, "cannot make the copy: %s", why);
        api_backup_remove(dir, why, sizeof why);
        return -1;
    }
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(msg, msg_size, "cannot open the copy %s: %s", file, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        *size = sb.st_size;
    }
    if (api_backup_remove(dir, why, sizeof why))
        api_log("warn", "the backup copy could not be removed", json_pack("{s:s}", "error", why));
    return fd;
}

/* The response: the copy's bytes, named for when the backup started (UTC). */
static enum MHD_Result send_copy(struct api_req *r, int fd, off_t size, time_t started)
{
    struct bk_stream *b = malloc(sizeof *b);
    struct MHD_Response *resp =
        b ? MHD_create_response_from_callback((uint64_t)size, API_BACKUP_BLOCK, bk_read, b, bk_free) : NULL;
    if (!resp) {
        free(b);
        close(fd);
        atomic_store(&r->srv->backup_busy, 0);
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    }
    b->fd = fd;
    b->busy = &r->srv->backup_busy;
    struct tm tm;
    char disp[96];
    gmtime_r(&started, &tm);
    strftime(disp, sizeof disp, "attachment; filename=\"credwatch-backup-%Y%m%dT%H%M%SZ.mdb\"", &tm);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    api_log("info", "backup made, sending it", json_pack("{s:I,s:s}", "bytes", (json_int_t)size, "data_dir", r->srv->cfg.data_dir));
    return api_reply_response(r, MHD_HTTP_OK, "application/octet-stream", resp);
}

enum MHD_Result api_backup_get(struct api_req *r)
{
    struct api_server *s = r->srv;
    if (!s->durable) {
        char msg[API_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "backups are made of the durable store (CREDWATCH_STORE=durable); this instance "
                 "uses the %s store%s", s->store_name,
                 s->embedded ? ", which keeps nothing to back up" : ": back up Redis with its own tools");
        return api_reply_error(r, MHD_HTTP_CONFLICT, "backup_unsupported", msg);
    }
    int idle = 0;
    if (!atomic_compare_exchange_strong(&s->backup_busy, &idle, 1))
        return api_reply_error(r, MHD_HTTP_CONFLICT, "backup_in_progress",
                               "another backup is being made or sent; retry when it is done");
    struct api_worker *w = api_worker_get(s);
    if (!w) {
        atomic_store(&s->backup_busy, 0);
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", "cannot open a store handle; retry");
    }
    time_t started = time(NULL);
    off_t size = 0;
    char msg[API_ERR_MSG_MAX];
    int fd = make_copy(w->st, s->cfg.data_dir, &size, msg, sizeof msg);
    if (fd < 0) {
        atomic_store(&s->backup_busy, 0);
        api_log("error", "backup failed", json_pack("{s:s}", "error", msg));
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "backup_failed", msg);
    }
    return send_copy(r, fd, size, started);
}
