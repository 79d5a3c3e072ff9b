#!/bin/sh
# redis_tls_certs.sh DIR — a test CA and the certificates the Redis TLS tests need, made with
# openssl in DIR (EC P-256 keys: fast to make; nothing here is secret or lasts beyond the test):
#   ca.crt            the test CA (what CREDWATCH_REDIS_CA_FILE names)
#   other-ca.crt      another CA, which signed nothing the servers use (the "wrong CA" case)
#   server.crt/.key   127.0.0.1 (IP SAN) and localhost, signed by ca, valid for a day; for clients too
#                     (a cluster node presents it on the cluster bus, whose TLS always checks the peer)
#   expired.crt/.key  the same names, signed by ca, valid only in 2020
#   otherhost.crt/.key  signed by ca, for redis.example.com and 10.9.9.9 only (the "wrong host" case)
#   client.crt/.key   a client certificate signed by ca (tls-auth-clients yes)
#   rogue-client.crt/.key  a client certificate signed by other-ca
# Used by tests/it_redis_tls.sh and tests/bench_redis_tls.sh. Exits non-zero when openssl fails.
set -eu
d=$1
mkdir -p "$d"
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name CN
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # name CA SAN extendedKeyUsage
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=credwatch-test-$1" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 1 -extfile "$1.ext" \
    -out "$1.crt" 2>/dev/null
}
ca ca credwatch-test-ca
ca other-ca credwatch-other-ca
leaf server ca "IP:127.0.0.1,DNS:localhost" serverAuth,clientAuth
leaf otherhost ca "DNS:redis.example.com,IP:10.9.9.9" serverAuth
leaf client ca "DNS:credwatch-client" clientAuth
leaf rogue-client other-ca "DNS:credwatch-client" clientAuth
# An expired certificate: `openssl x509 -req` of OpenSSL 3.0 cannot set past dates; `openssl ca` can.
key expired.key
openssl req -new -key expired.key -out expired.csr -subj "/CN=credwatch-test-expired" 2>/dev/null
mkdir -p ca-db
: >ca-db/index.txt
echo 01 >ca-db/serial
cat >ca-db/ca.cnf <<EOF
[ ca ]
default_ca = test
[ test ]
dir = ca-db
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.crt
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
subjectAltName = IP:127.0.0.1,DNS:localhost
extendedKeyUsage = serverAuth
basicConstraints = CA:FALSE
EOF
openssl ca -batch -config ca-db/ca.cnf -in expired.csr -out expired.crt -notext \
  -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1
chmod 600 ./*.key
# every certificate made, and the expired one really expired
for c in ca other-ca server otherhost client rogue-client expired; do [ -s "$c.crt" ]; done
! openssl x509 -in expired.crt -noout -checkend 0 >/dev/null
