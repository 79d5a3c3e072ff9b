/* redis_tls.c — the TLS side of a Redis connection with OpenSSL (see redis_tls.h). Knows no
 * socket I/O: redis_io.c drives the handshake and the records on its non-blocking socket. */
#include "redis_tls.h"
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* OpenSSL's reason for the oldest error of this thread's queue (the first thing that went wrong),
 * then the queue emptied so that the next call starts clean. */
const char *store_redis_tls_var(const char *msg)
{
    if (strncmp(msg, "CA file", 7) == 0)
        return "CREDWATCH_REDIS_CA_FILE";
    if (strncmp(msg, "client certificate", 18) == 0 || strncmp(msg, "a client key", 12) == 0)
        return "CREDWATCH_REDIS_CLIENT_CERT";
    if (strncmp(msg, "client key", 10) == 0)
        return "CREDWATCH_REDIS_CLIENT_KEY";
    return NULL;
}

static const char *ossl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    const char *r = e && ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e))  /* a file missing, unreadable */
                    : e                     ? ERR_reason_error_string(e)
                                            : NULL;
    if (r)
        snprintf(buf, size, "%s", r);
    else if (e)
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "%s", errno ? strerror(errno) : "unknown reason");
    ERR_clear_error();
    return buf;
}

/* OpenSSL's pass phrase callback: no pass phrase. Its default asks on the terminal or reads stdin,
 * and a service started by hand, or with stdin left open, waited there at start; an encrypted
 * key is refused instead, and *asked (the userdata) tells the caller that it was encrypted. */
static int no_pass_phrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(int *)asked = 1;
    return 0;
}

/* The certificate and key of the client, for servers that ask for one (tls-auth-clients yes). */
static int client_cert(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *msg, size_t msg_size)
{
    char why[160];
    int encrypted = 0;
    SSL_CTX_set_default_passwd_cb(ctx, no_pass_phrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &encrypted);
    const char *key = key_file && *key_file ? key_file : cert_file;
    if (!cert_file || !*cert_file) {
        if (key_file && *key_file) {
            snprintf(msg, msg_size, "a client key (%.200s) without a client certificate", key_file);
            return -1;
        }
        return 0;
    }
    if (!SSL_CTX_use_certificate_chain_file(ctx, cert_file)) {
        snprintf(msg, msg_size, "client certificate %.200s: %s", cert_file, ossl_reason(why, sizeof why));
        return -1;
    }
    int ok = SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);  /* &encrypted ends with this call */
    if (!ok) {
        snprintf(msg, msg_size, "client key %.200s: %s", key,
                 encrypted ? "the key is encrypted, and credwatch takes no pass phrase for it (decrypt it: "
                             "openssl pkey -in KEY -out PLAIN)"
                           : ossl_reason(why, sizeof why));
        ERR_clear_error();
        return -1;
    }
    if (!SSL_CTX_check_private_key(ctx)) {
        snprintf(msg, msg_size, "client key %.200s does not match the client certificate %.200s", key, cert_file);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

SSL_CTX *rtls_ctx_new(const char *ca_file, const char *cert_file, const char *key_file, char *msg, size_t msg_size)
{
    char why[160];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(msg, msg_size, "TLS: %s", ossl_reason(why, sizeof why));
        return NULL;
    }
    /* TLS 1.0 and 1.1 are deprecated (RFC 8996); Redis 6+ and every managed Redis speak 1.2 and 1.3 */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* a write may send part of the pipeline, as send() does; the rest follows once writable */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    int ok;
    if (ca_file && *ca_file) {
        ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
        if (!ok)
            snprintf(msg, msg_size, "CA file %.200s: %s", ca_file, ossl_reason(why, sizeof why));
    } else {
        ok = SSL_CTX_set_default_verify_paths(ctx);
        if (!ok)
            snprintf(msg, msg_size, "the system's CA store: %s", ossl_reason(why, sizeof why));
    }
    if (!ok || client_cert(ctx, cert_file, key_file, msg, msg_size)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL *rtls_session(SSL_CTX *ctx, int fd, const char *host)
{
    unsigned char ip[sizeof(struct in6_addr)];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    /* an address is checked against the certificate's IP entries; SNI carries names only (RFC 6066) */
    int ok = SSL_set_fd(ssl, fd) &&
             (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                    : SSL_set_tlsext_host_name(ssl, host) && SSL_set1_host(ssl, host));
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    return ssl;
}

/* What to do about a refused server certificate, for the three mistakes one meets in practice. */
static const char *verify_hint(long v)
{
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return " (the server's certificate is outside its validity period: renew it, or check the clock)";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return " (the certificate is for another host: connect with a name or address it lists)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return " (signed by a CA not trusted here: set CREDWATCH_REDIS_CA_FILE to the server's CA)";
    default:
        return "";
    }
}

void rtls_failure(SSL *ssl, int ret, char *why, size_t size)
{
    int e = SSL_get_error(ssl, ret);
    long v = SSL_get_verify_result(ssl);
    char reason[160];
    if (v != X509_V_OK) {
        ERR_clear_error();
        snprintf(why, size, "TLS: server certificate refused: %s%s", X509_verify_cert_error_string(v), verify_hint(v));
    } else if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, size, "TLS: the server closed the connection");
    } else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
        /* Redis closes a connection without a client certificate it requires right after the
         * handshake (TLS 1.3 asks for it then), so the alert saying so is often lost in the reset */
        snprintf(why, size, "TLS: %s%s", errno && ret < 0 ? strerror(errno) : "the connection closed",
                 " (a server that requires a client certificate closes the connection: CREDWATCH_REDIS_CLIENT_CERT)");
    } else {
        ossl_reason(reason, sizeof reason);
        snprintf(why, size, "TLS: %s%s", reason,
                 strstr(reason, "wrong version number") || strstr(reason, "packet length too long")
                     ? " (the port speaks plain Redis? use redis:// there)"
                 : strstr(reason, "certificate required") || strstr(reason, "handshake failure") ||
                   strstr(reason, "alert unknown ca") || strstr(reason, "alert bad certificate")
                     ? " (the server wants a client certificate it trusts: CREDWATCH_REDIS_CLIENT_CERT)" : "");
    }
}
