/* api_tls.h — HTTPS for the listener: the certificate and key (and the client CA of mutual TLS)
 * read from files, checked before the daemon starts, handed to each handshake by libmicrohttpd's
 * certificate callback, and replaced on SIGHUP without dropping a request.
 *
 * One credential set is current at a time. A handshake takes a reference to it and keeps it until
 * its connection closes (api_conn_attach), so a reload never frees what a handshake in progress or
 * a connection still open uses; the last reference frees a retired set. A file that fails to load
 * at reload leaves the current set in place.
 */
#ifndef CW_API_TLS_H
#define CW_API_TLS_H

#include <stddef.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "settings.h"

#define API_TLS_PASSWORD_MAX 256     /* a key password's bytes, NUL included */
#define API_TLS_CHAIN_MAX 8          /* certificates in the server's chain, and in a client's */
#define API_TLS_FILE_MAX (1u << 20)  /* a PEM file: a chain or a CA bundle is kilobytes, not more */
#define API_TLS_FINGERPRINT_MAX 96   /* SHA-256 as hex pairs with colons: 95 bytes */

/* TLS 1.3 and 1.2 only; AEAD ciphers (AES-GCM, ChaCha20-Poly1305); forward-secret key exchange only
 * (ECDHE; TLS 1.3 has no other); the server's order of preference. TLS 1.0/1.1, CBC and SHA-1 MACs,
 * RSA key transport and finite-field DHE (which would need parameters and is slow) are off. The
 * README's HTTPS section lists what this admits. */
#define API_TLS_PRIORITIES                                                                                  \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-COMP-ALL:+COMP-NULL:%SERVER_PRECEDENCE"

/* The settings (api_config.c): paths, "" when unset. */
struct api_tls_files {
    char cert[SET_PATH_MAX];
    char key[SET_PATH_MAX];
    char key_password[API_TLS_PASSWORD_MAX];
    char client_ca[SET_PATH_MAX];
};

/* What a loaded set is, for the logs. */
struct api_tls_info {
    char subject[256];
    char not_after[32];                        /* RFC 3339 */
    long long not_after_s;                     /* the same, seconds since the epoch */
    char fingerprint[API_TLS_FINGERPRINT_MAX]; /* SHA-256 of the leaf certificate */
    unsigned chain;                            /* certificates in the chain file */
    unsigned client_cas;                       /* CA certificates of mutual TLS; 0 = none asked */
};

/* Reads and checks the files, and makes them current. 0, or CW_ECONFIG with msg naming the
 * variable and the reason (unreadable, not PEM, no certificate, expired, a key that does not match
 * the certificate, a wrong password), or CW_ENOMEM. The paths are copied: reloads read them again. */
int api_tls_init(const struct api_tls_files *f, struct api_tls_info *info, char *msg, size_t msg_size);

/* SIGHUP: reads the same files again; the new set serves every handshake from now on. On failure
 * the current set stays and msg says why (the same words as at start). */
int api_tls_reload(struct api_tls_info *info, char *msg, size_t msg_size);

/* Drops the current set (after the daemon stopped: no handshake is left). */
void api_tls_free(void);

/* MHD_OPTION_HTTPS_CERT_CALLBACK (GnuTLS's retrieve function 2): the current chain and key, and,
 * with a client CA, a certificate required of the client and verified against it. */
int api_tls_cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *privkey);

/* Handshakes refused for a client certificate the client CA did not sign (a missing one is refused by
 * GnuTLS itself, GNUTLS_CERT_REQUIRE, before any check of ours). */
unsigned long long api_tls_client_refused_total(void);
/* SIGHUP reloads that replaced the set (ok) or kept the old one (!ok). */
unsigned long long api_tls_reloads_total(int ok);
/* The current leaf's expiry, seconds since the epoch; 0 without HTTPS. */
long long api_tls_not_after(void);

#endif
