/* api_backup_cli.c — `credwatch backup PATH`: a consistent copy of the durable store into the new
 * directory PATH (PATH/data.mdb, a data directory `credwatch serve` opens as it is).
 *
 * The data directory belongs to one process at a time (its lock). So: with CREDWATCH_URL set, the
 * copy is asked of that server (GET /v1/backup with CREDWATCH_READ_TOKEN) and written to a
 * temporary file, fsynced and renamed; without it, the directory is opened here, which works only
 * while no server holds it, and the message says how to ask the server instead. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_backup.h"
#include "cw.h"
#include "settings.h"
#include "store.h"

#define BK_EXIT_USAGE 2        /* a setting or argument to change */
#define BK_EXIT_FAILED 1
#define BK_URL_MAX 1024        /* CREDWATCH_URL, with the route appended */
#define BK_TOKEN_MAX 512       /* a read token (api_auth.h allows up to 255 bytes) with the header name */
#define BK_ERR_BODY_MAX 1024   /* an error reply kept to print its message */
#define BK_CONNECT_S 10L
/* The server makes the whole copy before the first byte is sent: allow it this long without a
 * byte (an 8 GiB store copies in well under a minute on a local disk). */
#define BK_STALL_S 600L

struct bk_get {
    int fd;                    /* the temporary file */
    CURL *curl;
    int ok;                    /* the reply is a 200: its body is the copy */
    int write_failed;
    curl_off_t written;
    char err[BK_ERR_BODY_MAX + 1];
    size_t err_len;
};

static void usage(FILE *out)
{
    fputs("usage: credwatch backup PATH\n\n"
          "Writes a consistent copy of the durable store to PATH/data.mdb (PATH: a new or empty directory).\n"
          "To restore, stop credwatch and start it with CREDWATCH_DATA_DIR=PATH (or move data.mdb into\n"
          "an empty data directory).\n\n"
          "  CREDWATCH_URL         a running server (http://host:port): the copy is made by it, while it\n"
          "                        serves (GET /v1/backup); CREDWATCH_READ_TOKEN is its read token\n"
          "  (unset)               the data directory is opened here: only while no server uses it\n"
          "  CREDWATCH_DATA_DIR    the data directory (default as for serve: $STATE_DIRECTORY, else\n"
          "                        " SET_DATA_DIR_SYSTEM " when writable, else " SET_DATA_DIR_LOCAL ")\n",
          out);
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* PATH made (0700: 1), or already an empty directory (0); -1 when neither. */
static int make_dest(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return 1;
    if (errno != EEXIST) {
        fprintf(stderr, "credwatch backup: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char file[SET_PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/data.mdb", path);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || access(file, F_OK) == 0) {
        fprintf(stderr, "credwatch backup: %s exists and is not an empty directory; name a new one\n", path);
        return -1;
    }
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct bk_get *g = ud;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &status);
    g->ok = status == 200;
    if (!g->ok) {  /* an error document: keep its start for the message */
        size_t room = BK_ERR_BODY_MAX - g->err_len, k = len < room ? len : room;
        memcpy(g->err + g->err_len, p, k);
        g->err_len += k;
        g->err[g->err_len] = '\0';
        return len;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(g->fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            g->write_failed = errno ? errno : EIO;
            return 0;  /* libcurl stops the transfer */
        }
        off += (size_t)w;
    }
    g->written += (curl_off_t)len;
    return len;
}

/* GET base/v1/backup into g->fd. 0 when a whole 200 body was written, else -1 with why. */
static int fetch(const char *base, const char *token, struct bk_get *g, char *why, size_t why_size)
{
    char url[BK_URL_MAX], auth[BK_TOKEN_MAX];
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof url, "%.*s/v1/backup", (int)bl, base);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    struct curl_slist *hdrs = token && *token ? curl_slist_append(NULL, auth) : NULL;
    g->curl = curl_easy_init();
    if (!g->curl) {
        snprintf(why, why_size, "cannot start libcurl");
        curl_slist_free_all(hdrs);
        return -1;
    }
    curl_easy_setopt(g->curl, CURLOPT_URL, url);
    curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(g->curl, CURLOPT_CONNECTTIMEOUT, BK_CONNECT_S);
    curl_easy_setopt(g->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(g->curl, CURLOPT_LOW_SPEED_TIME, BK_STALL_S);
    curl_easy_setopt(g->curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(g->curl);
    long status = 0;
    curl_off_t expect = -1;
    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(g->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expect);
    curl_easy_cleanup(g->curl);
    curl_slist_free_all(hdrs);
    if (g->write_failed)
        snprintf(why, why_size, "writing the copy: %s", strerror(g->write_failed));
    else if (rc != CURLE_OK)
        snprintf(why, why_size, "GET %s: %s", url, curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(why, why_size, "GET %s: HTTP %ld: %s", url, status, g->err_len ? g->err : "(no body)");
    else if (expect >= 0 && expect != g->written)
        snprintf(why, why_size, "GET %s: %lld bytes of %lld arrived", url, (long long)g->written, (long long)expect);
    else
        return 0;
    return -1;
}

/* From the server: PATH/data.mdb.tmp, fsync, rename to PATH/data.mdb, fsync PATH. */
static int backup_remote(const char *base, const char *dest)
{
    char tmp[SET_PATH_MAX + 32], final[SET_PATH_MAX + 32], why[BK_ERR_BODY_MAX + BK_URL_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s/data.mdb.tmp", dest);
    snprintf(final, sizeof final, "%s/data.mdb", dest);
    struct bk_get g = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (g.fd < 0) {
        fprintf(stderr, "credwatch backup: %s: %s\n", tmp, strerror(errno));
        return BK_EXIT_FAILED;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = fetch(base, getenv("CREDWATCH_READ_TOKEN"), &g, why, sizeof why);
    curl_global_cleanup();
    if (rc == 0 && fsync(g.fd) != 0) {
        snprintf(why, sizeof why, "fsync %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    close(g.fd);
    if (rc == 0 && (rename(tmp, final) != 0 || fsync_path(dest, O_RDONLY | O_DIRECTORY) != 0)) {
        snprintf(why, sizeof why, "%s: %s", final, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp);
        fprintf(stderr, "credwatch backup: %s\n", why);
        return BK_EXIT_FAILED;
    }
    printf("backup: %s (%lld bytes) from %s\n", final, (long long)g.written, base);
    return 0;
}

/* No server named: open the data directory here (refused while a server holds its lock). */
static int backup_local(const char *dest)
{
    char dir[SET_PATH_MAX], msg[512], file[SET_PATH_MAX + 32];
    const char *from = "";
    uint64_t max = STORE_DURABLE_DEFAULT_BYTES;
    const char *mb = getenv("CREDWATCH_DATA_MAX_BYTES");
    if (set_data_dir(getenv("CREDWATCH_DATA_DIR"), getenv("STATE_DIRECTORY"), SET_DATA_DIR_SYSTEM, dir, sizeof dir,
                     &from, msg, sizeof msg) ||
        (mb && *mb && set_data_max_bytes(mb, "CREDWATCH_DATA_MAX_BYTES", &max, msg, sizeof msg))) {
        fprintf(stderr, "credwatch backup: %s\n", msg);
        return BK_EXIT_USAGE;
    }
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    if (access(file, F_OK) != 0) {  /* never create an empty store where the user did not mean one */
        fprintf(stderr, "credwatch backup: no durable store in %s (CREDWATCH_DATA_DIR; chosen by: %s)\n", dir, from);
        return BK_EXIT_USAGE;
    }
    /* PATH new or empty, as for a copy from a server: the copy is renamed over PATH/data.mdb, which
     * must never be a store's own file (PATH the data directory itself, or another one in use) */
    int made = make_dest(dest);
    if (made < 0)
        return BK_EXIT_USAGE;
    struct store *s = store_lmdb_new(dir, max, msg, sizeof msg);
    if (!s) {
        fprintf(stderr, "credwatch backup: %s\nwhile `credwatch serve` uses the directory, the server makes the copy: "
                "CREDWATCH_URL=http://HOST:PORT CREDWATCH_READ_TOKEN=... credwatch backup %s\n", msg, dest);
        if (made)
            rmdir(dest);
        return BK_EXIT_FAILED;
    }
    int rc = store_lmdb_backup(s, dest, msg, sizeof msg);
    store_free(s);
    snprintf(file, sizeof file, "%s/data.mdb", dest);
    if (rc == 0 && (fsync_path(file, O_RDONLY) != 0 || fsync_path(dest, O_RDONLY | O_DIRECTORY) != 0)) {
        snprintf(msg, sizeof msg, "fsync %s: %s", file, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "credwatch backup: %s\n", msg);
        return BK_EXIT_FAILED;
    }
    printf("backup: %s from %s\n", file, dir);
    return 0;
}

int api_backup_main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        usage(stderr);
        return BK_EXIT_USAGE;
    }
    const char *dest = argv[1], *url = getenv("CREDWATCH_URL");
    if (strlen(dest) >= SET_PATH_MAX) {
        fprintf(stderr, "credwatch backup: PATH longer than %d bytes\n", SET_PATH_MAX - 1);
        return BK_EXIT_USAGE;
    }
    if (url && *url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "credwatch backup: CREDWATCH_URL: expected http://host:port or https://...\n");
        return BK_EXIT_USAGE;
    }
    if (url && *url) {
        int made = make_dest(dest);
        if (made < 0)
            return BK_EXIT_USAGE;
        int rc = backup_remote(url, dest);
        if (rc != 0 && made)
            rmdir(dest);  /* a failed copy leaves nothing behind that was not there before */
        return rc;
    }
    return backup_local(dest);
}
