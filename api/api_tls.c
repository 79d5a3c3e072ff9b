/* api_tls.c — see api_tls.h.
 *
 * The current set sits behind one mutex held only to take a reference or to swap the pointer, so a
 * handshake never sees a set that is being freed: the reference count is raised under the lock, and
 * the set is freed by whoever drops the last reference (a connection closing, or the reload that
 * retires it when no connection holds it).
 *
 * The connection of a handshake is the session's pointer: libmicrohttpd 0.9.75 sets it to its
 * MHD_Connection (daemon.c, as its own PSK adapter reads it), and the callback checks that the
 * connection's session is this one before trusting it.
 */
#include "api_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "api_conn.h"
#include "cw.h"

#define TLS_KEY_ID_MAX 64  /* a SHA-256 key id is 32 bytes */

struct tls_set {
    atomic_int refs;
    gnutls_pcert_st pcert[API_TLS_CHAIN_MAX];
    unsigned n;                       /* certificates imported into pcert */
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t ca;      /* NULL: no client certificate asked */
    struct api_tls_info info;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_set *current;
static struct api_tls_files files;
static atomic_ullong client_refused, reloads_ok, reloads_failed;
static _Atomic long long not_after_s;

static void set_free(struct tls_set *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        gnutls_pcert_deinit(&s->pcert[i]);
    if (s->key)
        gnutls_privkey_deinit(s->key);
    if (s->ca)
        gnutls_x509_trust_list_deinit(s->ca, 1);
    free(s);
}

static void set_release(void *p)
{
    struct tls_set *s = p;
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        set_free(s);
}

static struct tls_set *set_acquire(void)
{
    pthread_mutex_lock(&lock);
    struct tls_set *s = current;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&lock);
    return s;
}

/* The whole file, NUL-terminated (PEM is text), within API_TLS_FILE_MAX. The caller frees d->data. */
static int read_file(const char *var, const char *path, gnutls_datum_t *d, char *msg, size_t msg_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msg_size, "%s: cannot open %s: %s", var, path, strerror(errno));
        return CW_ECONFIG;
    }
    unsigned char *buf = malloc(API_TLS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, API_TLS_FILE_MAX + 1, f) : 0;
    int bad = !buf ? CW_ENOMEM : ferror(f) ? CW_EIO : n > API_TLS_FILE_MAX ? CW_ETOOBIG : n == 0 ? CW_EFORMAT : 0;
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(msg, msg_size, "%s: cannot read %s: %s", var, path,
                 bad == CW_ETOOBIG ? "larger than 1 MiB" : bad == CW_EFORMAT ? "empty" : cw_strerror(bad));
        return bad == CW_ENOMEM ? CW_ENOMEM : CW_ECONFIG;
    }
    buf[n] = '\0';
    d->data = buf;
    d->size = (unsigned)n;
    return CW_OK;
}

static void format_time(time_t t, char *out, size_t size)
{
    if (cw_time_format((int64_t)t * 1000, 0, out, size))
        snprintf(out, size, "%lld", (long long)t);
}

/* Subject, expiry and fingerprint of the leaf; refuses a leaf out of its validity period, which no
 * client would accept (at start: the service would answer nobody; at reload: the old one stays). */
static int check_leaf(struct tls_set *s, char *msg, size_t msg_size)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return CW_ENOMEM;
    int rc = gnutls_x509_crt_import(crt, &s->pcert[0].cert, GNUTLS_X509_FMT_DER);
    if (rc < 0) {
        gnutls_x509_crt_deinit(crt);
        snprintf(msg, msg_size, "CREDWATCH_TLS_CERT: %s: %s", files.cert, gnutls_strerror(rc));
        return CW_ECONFIG;
    }
    struct api_tls_info *in = &s->info;
    gnutls_datum_t dn = {NULL, 0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0)
        snprintf(in->subject, sizeof in->subject, "%s", (const char *)dn.data);
    gnutls_free(dn.data);
    unsigned char fp[32];
    size_t fl = sizeof fp;
    if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fl) == 0)
        for (size_t i = 0, off = 0; i < fl && off < sizeof in->fingerprint; i++)  /* "AB:CD:..." */
            off += (size_t)snprintf(in->fingerprint + off, sizeof in->fingerprint - off, "%s%02X", i ? ":" : "", fp[i]);
    time_t from = gnutls_x509_crt_get_activation_time(crt), until = gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    format_time(until, in->not_after, sizeof in->not_after);
    in->not_after_s = (long long)until;
    time_t now = time(NULL);
    if (now > until || now < from) {
        char when[32];
        format_time(now > until ? until : from, when, sizeof when);
        snprintf(msg, msg_size, "CREDWATCH_TLS_CERT: %s: the certificate %s %s", files.cert,
                 now > until ? "expired on" : "is not valid before", when);
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* The chain, leaf first, each certificate signed by the next (GnuTLS refuses an unsorted list). */
static int load_chain(struct tls_set *s, char *msg, size_t msg_size)
{
    gnutls_datum_t d;
    int rc = read_file("CREDWATCH_TLS_CERT", files.cert, &d, msg, msg_size);
    if (rc)
        return rc;
    unsigned n = API_TLS_CHAIN_MAX;
    rc = gnutls_pcert_list_import_x509_raw(s->pcert, &n, &d, GNUTLS_X509_FMT_PEM,
                                           GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    free(d.data);
    if (rc < 0 || n == 0) {
        snprintf(msg, msg_size, "CREDWATCH_TLS_CERT: %s: not a PEM certificate chain (leaf first, at most %u): %s",
                 files.cert, API_TLS_CHAIN_MAX, rc < 0 ? gnutls_strerror(rc) : "no certificate");
        return CW_ECONFIG;
    }
    s->n = n;
    s->info.chain = n;
    return check_leaf(s, msg, msg_size);
}

static int load_key(struct tls_set *s, char *msg, size_t msg_size)
{
    gnutls_datum_t d;
    int rc = read_file("CREDWATCH_TLS_KEY", files.key, &d, msg, msg_size);
    if (rc)
        return rc;
    if (gnutls_privkey_init(&s->key) < 0) {
        free(d.data);
        return CW_ENOMEM;
    }
    const char *pw = files.key_password[0] ? files.key_password : NULL;
    rc = gnutls_privkey_import_x509_raw(s->key, &d, GNUTLS_X509_FMT_PEM, pw, 0);
    free(d.data);
    if (rc < 0) {
        snprintf(msg, msg_size, "CREDWATCH_TLS_KEY: %s: not a usable PEM private key: %s%s", files.key,
                 gnutls_strerror(rc), pw ? " (is CREDWATCH_TLS_KEY_PASSWORD right?)"
                 : " (an encrypted key needs CREDWATCH_TLS_KEY_PASSWORD)");
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* The key must be the leaf's: compares the SHA-256 ids of the two public keys. */
static int check_match(struct tls_set *s, char *msg, size_t msg_size)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return CW_ENOMEM;
    unsigned char a[TLS_KEY_ID_MAX], b[TLS_KEY_ID_MAX];
    size_t al = sizeof a, bl = sizeof b;
    int rc = gnutls_pubkey_import_privkey(pub, s->key, 0, 0);
    if (rc == 0)
        rc = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &al);
    if (rc == 0)
        rc = gnutls_pubkey_get_key_id(s->pcert[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &bl);
    gnutls_pubkey_deinit(pub);
    if (rc < 0 || al != bl || memcmp(a, b, al) != 0) {
        snprintf(msg, msg_size, "CREDWATCH_TLS_KEY: %s: %s the certificate in CREDWATCH_TLS_CERT (%s)", files.key,
                 rc < 0 ? "cannot be compared with" : "does not match", rc < 0 ? gnutls_strerror(rc) : files.cert);
        return CW_ECONFIG;
    }
    return CW_OK;
}

static int load_client_ca(struct tls_set *s, char *msg, size_t msg_size)
{
    if (!files.client_ca[0])
        return CW_OK;
    gnutls_datum_t d;
    int rc = read_file("CREDWATCH_TLS_CLIENT_CA", files.client_ca, &d, msg, msg_size);
    if (rc)
        return rc;
    if (gnutls_x509_trust_list_init(&s->ca, 0) < 0) {
        free(d.data);
        return CW_ENOMEM;
    }
    rc = gnutls_x509_trust_list_add_trust_mem(s->ca, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
    free(d.data);
    if (rc <= 0) {
        snprintf(msg, msg_size, "CREDWATCH_TLS_CLIENT_CA: %s: no PEM CA certificate in it%s%s", files.client_ca,
                 rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
        return CW_ECONFIG;
    }
    s->info.client_cas = (unsigned)rc;
    return CW_OK;
}

/* A new set from the files, with one reference (the caller's); NULL and msg when one is refused. */
static struct tls_set *set_load(int *err, char *msg, size_t msg_size)
{
    struct tls_set *s = calloc(1, sizeof *s);
    if (!s) {
        *err = CW_ENOMEM;
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    *err = load_chain(s, msg, msg_size);
    if (!*err)
        *err = load_key(s, msg, msg_size);
    if (!*err)
        *err = check_match(s, msg, msg_size);
    if (!*err)
        *err = load_client_ca(s, msg, msg_size);
    if (*err == CW_ENOMEM)
        snprintf(msg, msg_size, "out of memory");
    if (*err) {
        set_free(s);
        return NULL;
    }
    return s;
}

/* Makes s current; the retired set goes when its last connection closes. */
static void set_publish(struct tls_set *s)
{
    pthread_mutex_lock(&lock);
    struct tls_set *old = current;
    current = s;
    pthread_mutex_unlock(&lock);
    atomic_store(&not_after_s, s->info.not_after_s);
    set_release(old);
}

int api_tls_init(const struct api_tls_files *f, struct api_tls_info *info, char *msg, size_t msg_size)
{
    files = *f;
    int err;
    struct tls_set *s = set_load(&err, msg, msg_size);
    if (!s)
        return err;
    *info = s->info;
    set_publish(s);
    return CW_OK;
}

int api_tls_reload(struct api_tls_info *info, char *msg, size_t msg_size)
{
    int err;
    struct tls_set *s = set_load(&err, msg, msg_size);
    if (!s) {
        atomic_fetch_add(&reloads_failed, 1);
        return err;
    }
    *info = s->info;
    set_publish(s);
    atomic_fetch_add(&reloads_ok, 1);
    return CW_OK;
}

void api_tls_free(void)
{
    pthread_mutex_lock(&lock);
    struct tls_set *old = current;
    current = NULL;
    pthread_mutex_unlock(&lock);
    set_release(old);
}

/* The client's chain against the client CA, for client authentication (a certificate whose
 * extended key usage excludes it is refused). */
static int chain_trusted(gnutls_x509_trust_list_t ca, const gnutls_datum_t *raw, unsigned n)
{
    gnutls_x509_crt_t crt[API_TLS_CHAIN_MAX];
    unsigned k = 0;
    if (n > API_TLS_CHAIN_MAX)
        n = API_TLS_CHAIN_MAX;
    for (; k < n; k++) {
        if (gnutls_x509_crt_init(&crt[k]) < 0)
            break;
        if (gnutls_x509_crt_import(crt[k], &raw[k], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(crt[k]);
            break;
        }
    }
    unsigned status = 1;
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
    int rc = k == n ? gnutls_x509_trust_list_verify_crt2(ca, crt, n, &purpose, 1, 0, &status, NULL) : -1;
    for (unsigned i = 0; i < k; i++)
        gnutls_x509_crt_deinit(crt[i]);
    return rc == 0 && status == 0;
}

/* The session's verify function: runs in the handshake, after the client's certificate; nonzero
 * ends the handshake (the client gets an alert, no HTTP is read). */
static int verify_client(gnutls_session_t session)
{
    struct MHD_Connection *c = gnutls_session_get_ptr(session);
    struct tls_set *s = c ? api_conn_attached(c) : NULL;
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
    if (s && s->ca && raw && n > 0 && chain_trusted(s->ca, raw, n))
        return 0;
    atomic_fetch_add(&client_refused, 1);
    return -1;
}

int api_tls_cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct MHD_Connection *c = gnutls_session_get_ptr(session);
    const union MHD_ConnectionInfo *ci = c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION) : NULL;
    if (!ci || ci->tls_session != session)
        return -1;
    struct tls_set *s = set_acquire();
    if (!s)
        return -1;
    if (api_conn_attach(c, s, set_release) != 0) {  /* no guard entry: nothing would release it */
        set_release(s);
        return -1;
    }
    if (s->ca) {  /* both take effect later in this handshake: the request, then the client's answer */
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(session, verify_client);
    }
    *pcert = s->pcert;
    *pcert_length = s->n;
    *privkey = s->key;
    return 0;
}

unsigned long long api_tls_client_refused_total(void) { return atomic_load(&client_refused); }
unsigned long long api_tls_reloads_total(int ok) { return atomic_load(ok ? &reloads_ok : &reloads_failed); }
long long api_tls_not_after(void) { return atomic_load(&not_after_s); }
