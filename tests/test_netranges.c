/* test_netranges.c — network classes of source addresses (service/netranges.[ch]).
 *
 * Fixture: tests/data/ip-ranges-sample.json, 24 records of the 2026-08-22 AWS list chosen for
 * their shapes (see tests/data/README.md):
 *   3.4.12.4/32            eu-west-1  AMAZON
 *   3.80.0.0/12            us-east-1  AMAZON, EC2
 *     3.80.16.0/23         us-east-1  CHIME_VOICECONNECTOR         (nested, other service)
 *   15.193.0.0/19          GLOBAL     AMAZON, AMAZON_CONNECT
 *     15.193.0.0/24        ap-south-1 AMAZON, EC2, AMAZON_CONNECT  (nested, other region)
 *   16.15.156.0/22         us-east-1  AMAZON, S3, EC2
 *   23.228.249.0/24        GLOBAL     AMAZON, CLOUDFRONT
 *   52.94.76.0/22          us-west-2  AMAZON
 *   2400:7fc0:110::/48     cn-north-1 AMAZON, EC2
 *     2400:7fc0:110::/56   cn-north-1 S3
 *   2600:9000:5200::/40    GLOBAL     AMAZON, CLOUDFRONT, CLOUDFRONT_ORIGIN_FACING
 *     2600:9000:5201::/48  us-east-1  AMAZON, EC2
 *   2a01:578:0:7301::1/128 eu-west-3  AMAZON
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "netranges.h"

#define SAMPLE "tests/data/ip-ranges-sample.json"

/* The class string of an address, or "error" when the lookup fails. */
static const char *cls_of(const struct nr_table *t, const char *ip)
{
    static char buf[NR_CLASS_MAX];
    struct nr_match m;
    if (nr_lookup(t, ip, &m) < 0)
        return "error";
    assert_int_equal(nr_class_string(&m, buf, sizeof buf), 0);
    return buf;
}

static struct nr_table *built(const char *aws_path, const char *allow)
{
    char msg[NR_MSG_MAX];
    struct nr_table *t = nr_table_new();
    assert_non_null(t);
    if (aws_path) {
        int rc = nr_load_aws(t, aws_path, msg, sizeof msg);
        if (rc != 0)
            fail_msg("load %s: %s", aws_path, msg);
    }
    if (allow) {
        int rc = nr_add_allow(t, allow, msg, sizeof msg);
        if (rc != 0)
            fail_msg("allow: %s", msg);
    }
    assert_int_equal(nr_build(t, msg, sizeof msg), 0);
    return t;
}

/* Writes text to a new temporary file; the caller unlinks path. */
static void write_tmp(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/test_netranges.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void test_ipv4_aws(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    struct nr_match m;
    assert_int_equal(nr_lookup(t, "3.4.12.4", &m), NR_AWS);
    assert_int_equal(m.cls, NR_AWS);
    assert_int_equal(m.family, AF_INET);
    assert_int_equal(m.prefix_len, 32);
    assert_string_equal(m.region, "eu-west-1");
    assert_string_equal(m.service, "AMAZON");
    assert_string_equal(m.label, "");
    assert_string_equal(cls_of(t, "3.4.12.4"), "aws:eu-west-1:AMAZON");
    assert_string_equal(cls_of(t, "3.4.12.3"), "external");
    assert_string_equal(cls_of(t, "3.4.12.5"), "external");
    assert_string_equal(cls_of(t, "52.94.77.10"), "aws:us-west-2:AMAZON");
    assert_string_equal(cls_of(t, "23.228.249.77"), "aws:GLOBAL:CLOUDFRONT");
    assert_string_equal(cls_of(t, "8.8.8.8"), "external");
    assert_string_equal(cls_of(t, "0.0.0.0"), "external");
    assert_string_equal(cls_of(t, "255.255.255.255"), "external");
    nr_table_unref(t);
}

/* The first and last address of a prefix are in it; the ones either side are not. */
static void test_boundaries(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    assert_string_equal(cls_of(t, "3.79.255.255"), "external");
    assert_string_equal(cls_of(t, "3.80.0.0"), "aws:us-east-1:EC2");
    assert_string_equal(cls_of(t, "3.95.255.255"), "aws:us-east-1:EC2");
    assert_string_equal(cls_of(t, "3.96.0.0"), "external");
    assert_string_equal(cls_of(t, "52.94.75.255"), "external");
    assert_string_equal(cls_of(t, "52.94.76.0"), "aws:us-west-2:AMAZON");
    assert_string_equal(cls_of(t, "52.94.79.255"), "aws:us-west-2:AMAZON");
    assert_string_equal(cls_of(t, "52.94.80.0"), "external");
    assert_string_equal(cls_of(t, "2400:7fc0:10f:ffff:ffff:ffff:ffff:ffff"), "external");
    assert_string_equal(cls_of(t, "2400:7fc0:110::"), "aws:cn-north-1:S3");
    assert_string_equal(cls_of(t, "2400:7fc0:110:ff:ffff:ffff:ffff:ffff"), "aws:cn-north-1:S3");
    assert_string_equal(cls_of(t, "2400:7fc0:110:100::"), "aws:cn-north-1:EC2");
    assert_string_equal(cls_of(t, "2400:7fc0:110:ffff:ffff:ffff:ffff:ffff"), "aws:cn-north-1:EC2");
    assert_string_equal(cls_of(t, "2400:7fc0:111::"), "external");
    assert_string_equal(cls_of(t, "2a01:578:0:7301::"), "external");
    assert_string_equal(cls_of(t, "2a01:578:0:7301::1"), "aws:eu-west-3:AMAZON");
    assert_string_equal(cls_of(t, "2a01:578:0:7301::2"), "external");
    assert_string_equal(cls_of(t, "::"), "external");
    assert_string_equal(cls_of(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "external");
    nr_table_unref(t);
}

static void test_longest_prefix_wins(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    struct nr_match m;
    /* The /23 inside the /12, then back to the /12 on both sides of it. */
    assert_string_equal(cls_of(t, "3.80.15.255"), "aws:us-east-1:EC2");
    assert_string_equal(cls_of(t, "3.80.16.0"), "aws:us-east-1:CHIME_VOICECONNECTOR");
    assert_int_equal(nr_lookup(t, "3.80.17.255", &m), NR_AWS);
    assert_int_equal(m.prefix_len, 23);
    assert_int_equal(m.prefix[0], 3);
    assert_int_equal(m.prefix[1], 80);
    assert_int_equal(m.prefix[2], 16);
    assert_int_equal(m.prefix[3], 0);
    assert_string_equal(cls_of(t, "3.80.18.0"), "aws:us-east-1:EC2");
    /* A regional block inside a GLOBAL one. */
    assert_string_equal(cls_of(t, "15.193.0.9"), "aws:ap-south-1:AMAZON_CONNECT");
    assert_string_equal(cls_of(t, "15.193.1.0"), "aws:GLOBAL:AMAZON_CONNECT");
    assert_string_equal(cls_of(t, "15.193.31.255"), "aws:GLOBAL:AMAZON_CONNECT");
    /* Same in IPv6. */
    assert_string_equal(cls_of(t, "2600:9000:5201::1"), "aws:us-east-1:EC2");
    assert_string_equal(cls_of(t, "2600:9000:5200::1"), "aws:GLOBAL:CLOUDFRONT");
    assert_string_equal(cls_of(t, "2600:9000:52ff:ffff:ffff:ffff:ffff:ffff"), "aws:GLOBAL:CLOUDFRONT");
    assert_string_equal(cls_of(t, "2600:9000:5300::"), "external");
    nr_table_unref(t);
}

/* A prefix listed for several services is one match holding all of them; the class string names
 * the most specific; enclosing prefixes of the same region add theirs, of another region do not. */
static void test_services(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    struct nr_match m;
    assert_int_equal(nr_lookup(t, "16.15.156.1", &m), NR_AWS);
    assert_string_equal(m.service, "S3");
    assert_true(nr_match_has_service(t, &m, "S3"));
    assert_true(nr_match_has_service(t, &m, "EC2"));
    assert_true(nr_match_has_service(t, &m, "AMAZON"));
    assert_false(nr_match_has_service(t, &m, "CLOUDFRONT"));
    assert_false(nr_match_has_service(t, &m, "NO_SUCH_SERVICE"));

    assert_int_equal(nr_lookup(t, "3.80.16.1", &m), NR_AWS);
    assert_string_equal(m.service, "CHIME_VOICECONNECTOR");
    assert_true(nr_match_has_service(t, &m, "EC2"));     /* from 3.80.0.0/12, same region */
    assert_true(nr_match_has_service(t, &m, "AMAZON"));

    assert_int_equal(nr_lookup(t, "2600:9000:5201::1", &m), NR_AWS);
    assert_string_equal(m.region, "us-east-1");
    assert_true(nr_match_has_service(t, &m, "EC2"));
    assert_false(nr_match_has_service(t, &m, "CLOUDFRONT"));  /* the GLOBAL parent's */

    assert_string_equal(cls_of(t, "3.80.0.1"), "aws:us-east-1:EC2");  /* EC2 over AMAZON */

    assert_int_equal(nr_lookup(t, "8.8.8.8", &m), NR_EXTERNAL);
    assert_false(nr_match_has_service(t, &m, "AMAZON"));
    assert_string_equal(m.region, "");
    assert_string_equal(m.service, "");

    struct nr_stats st;
    assert_int_equal(nr_table_stats(t, &st), 0);
    assert_int_equal(st.aws_v4, 8);
    assert_int_equal(st.aws_v6, 5);
    assert_int_equal(st.aws_prefixes, 13);
    assert_int_equal(st.allow_entries, 0);
    nr_table_unref(t);
}

static void test_ipv6_text_forms(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    assert_string_equal(cls_of(t, "2400:7FC0:110::1"), "aws:cn-north-1:S3");
    assert_string_equal(cls_of(t, "2400:7fc0:0110:0000:0000:0000:0000:0001"), "aws:cn-north-1:S3");
    assert_string_equal(cls_of(t, "2a01:578:0:7301:0:0:0:1"), "aws:eu-west-3:AMAZON");
    /* IPv4-mapped IPv6 is looked up as IPv4. */
    struct nr_match m;
    assert_int_equal(nr_lookup(t, "::ffff:3.4.12.4", &m), NR_AWS);
    assert_int_equal(m.family, AF_INET);
    assert_string_equal(cls_of(t, "::ffff:10.0.0.1"), "private");
    nr_table_unref(t);
}

static void test_private(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    static const char *priv[] = {
        "10.0.0.0", "10.255.255.255", "172.16.0.0", "172.31.255.255", "192.168.0.1", "192.168.255.255",
        "100.64.0.0", "100.127.255.255", "127.0.0.1", "169.254.169.254", "::1", "fc00::", "fd12:3456::1",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    };
    static const char *ext[] = {
        "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0",
        "100.63.255.255", "100.128.0.0", "169.253.255.255", "169.255.0.0", "::2", "fbff::1", "fe00::1",
        "fec0::1",
    };
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
        if (strcmp(cls_of(t, priv[i]), "private") != 0)
            fail_msg("%s: %s, want private", priv[i], cls_of(t, priv[i]));
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strcmp(cls_of(t, ext[i]), "external") != 0)
            fail_msg("%s: %s, want external", ext[i], cls_of(t, ext[i]));
    struct nr_match m;
    assert_int_equal(nr_lookup(t, "172.20.1.1", &m), NR_PRIVATE);
    assert_int_equal(m.prefix_len, 12);
    nr_table_unref(t);
}

static void test_not_ip(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, NULL);
    static const char *bad[] = {
        "lambda.amazonaws.com", "AWS Internal", "s3.amazonaws.com", "", " ", "1.2.3", "1.2.3.4.5",
        "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "1..3.4", "1.2.3.",
        "1.2.3.4/32", "0x1.2.3.4", "fe80::1%eth0", "::g", ":", "1:2:3:4:5:6:7:8:9", "2001:db8::/32",
        "12345::", "1.2.3.-4", "3.4.12.4\n",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000",  /* longer than any address */
    };
    struct nr_match m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = nr_lookup(t, bad[i], &m);
        if (rc != NR_NOT_IP || m.cls != NR_NOT_IP)
            fail_msg("\"%s\": class %d, want NR_NOT_IP", bad[i], rc);
    }
    assert_int_equal(nr_lookup(t, NULL, &m), NR_NOT_IP);
    char buf[NR_CLASS_MAX];
    assert_int_equal(nr_lookup(t, "AWS Internal", &m), NR_NOT_IP);
    assert_int_equal(nr_class_string(&m, buf, sizeof buf), 0);
    assert_string_equal(buf, "not-ip");
    assert_int_equal(m.family, 0);

    int fam;
    uint8_t a[16];
    assert_int_equal(nr_parse_ip("lambda.amazonaws.com", &fam, a), CW_EFORMAT);
    assert_int_equal(nr_parse_ip("198.51.100.7", &fam, a), 0);
    assert_int_equal(fam, AF_INET);
    assert_int_equal(a[3], 7);
    assert_int_equal(nr_parse_ip("2001:db8::1", &fam, a), 0);
    assert_int_equal(fam, AF_INET6);
    assert_int_equal(a[15], 1);
    nr_table_unref(t);
}

static void test_allow_labels(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, "203.0.113.0/24=corp-vpn,2001:db8::/32=office,198.51.100.7/32=nat-gw-a");
    struct nr_match m;
    assert_int_equal(nr_lookup(t, "203.0.113.77", &m), NR_ALLOW);
    assert_string_equal(m.label, "corp-vpn");
    assert_int_equal(m.prefix_len, 24);
    assert_string_equal(m.region, "");
    assert_string_equal(cls_of(t, "203.0.113.0"), "allowlisted:corp-vpn");
    assert_string_equal(cls_of(t, "203.0.113.255"), "allowlisted:corp-vpn");
    assert_string_equal(cls_of(t, "203.0.114.0"), "external");
    assert_string_equal(cls_of(t, "2001:db8:1234::5"), "allowlisted:office");
    assert_string_equal(cls_of(t, "2001:db9::"), "external");
    assert_string_equal(cls_of(t, "198.51.100.7"), "allowlisted:nat-gw-a");
    assert_string_equal(cls_of(t, "198.51.100.8"), "external");
    struct nr_stats st;
    assert_int_equal(nr_table_stats(t, &st), 0);
    assert_int_equal(st.allow_entries, 3);
    nr_table_unref(t);

    /* Spaces around entries and labels; unlabelled entries are labelled with their range; a bare
     * address is a host range; several calls accumulate. */
    char msg[NR_MSG_MAX];
    t = nr_table_new();
    assert_non_null(t);
    assert_int_equal(nr_add_allow(t, " 203.0.113.0/24 = corp-vpn , 192.0.2.9 ", msg, sizeof msg), 0);
    assert_int_equal(nr_add_allow(t, "2001:DB8:0:0::/48", msg, sizeof msg), 0);
    assert_int_equal(nr_add_allow(t, "", msg, sizeof msg), 0);
    assert_int_equal(nr_add_allow(t, "   ", msg, sizeof msg), 0);
    assert_int_equal(nr_build(t, msg, sizeof msg), 0);
    assert_string_equal(cls_of(t, "203.0.113.1"), "allowlisted:corp-vpn");
    assert_string_equal(cls_of(t, "192.0.2.9"), "allowlisted:192.0.2.9/32");
    assert_string_equal(cls_of(t, "192.0.2.10"), "external");
    assert_string_equal(cls_of(t, "2001:db8:0:ffff::1"), "allowlisted:2001:db8::/48");
    assert_string_equal(cls_of(t, "2001:db8:1::1"), "external");
    nr_table_unref(t);
}

/* The allow-list wins over AWS whatever the prefix lengths (a NAT gateway's address is an EC2
 * address), and over private ranges; among allow entries the longest prefix wins. */
static void test_allow_beats_aws(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, "3.0.0.0/8=wide,3.80.16.0/24=nat,3.80.20.1=one,10.0.0.0/16=vpc,"
                                       "2400:7fc0:110::/120=v6nat");
    assert_string_equal(cls_of(t, "3.80.16.5"), "allowlisted:nat");     /* AWS /23, allow /24 */
    assert_string_equal(cls_of(t, "3.80.17.5"), "allowlisted:wide");    /* AWS /23 beaten by allow /8 */
    assert_string_equal(cls_of(t, "3.80.20.1"), "allowlisted:one");
    assert_string_equal(cls_of(t, "3.80.20.2"), "allowlisted:wide");
    assert_string_equal(cls_of(t, "3.4.12.4"), "allowlisted:wide");     /* AWS /32 beaten by allow /8 */
    assert_string_equal(cls_of(t, "4.0.0.0"), "external");
    assert_string_equal(cls_of(t, "10.0.255.255"), "allowlisted:vpc");
    assert_string_equal(cls_of(t, "10.1.0.0"), "private");
    assert_string_equal(cls_of(t, "2400:7fc0:110::ff"), "allowlisted:v6nat");
    assert_string_equal(cls_of(t, "2400:7fc0:110::100"), "aws:cn-north-1:S3");
    nr_table_unref(t);
}

static void expect_allow_error(const char *spec, int want_rc, const char *want_in_msg)
{
    char msg[NR_MSG_MAX];
    struct nr_table *t = nr_table_new();
    assert_non_null(t);
    int rc = nr_add_allow(t, spec, msg, sizeof msg);
    if (rc != want_rc || !strstr(msg, want_in_msg))
        fail_msg("spec \"%s\": rc %d msg \"%s\", want rc %d and \"%s\"", spec, rc, msg, want_rc, want_in_msg);
    nr_table_unref(t);
}

static void test_allow_malformed(void **state)
{
    (void)state;
    expect_allow_error("203.0.113.0/33=x", CW_EFORMAT, "entry 1 \"203.0.113.0/33=x\": prefix length over 32");
    expect_allow_error("2001:db8::/129", CW_EFORMAT, "prefix length over 128");
    expect_allow_error("10.0.0.0/8,198.51.100.7/24=nat", CW_EFORMAT, "entry 2 \"198.51.100.7/24=nat\": host bits");
    expect_allow_error("corp-vpn", CW_EFORMAT, "entry 1 \"corp-vpn\": not an IPv4 or IPv6 address");
    expect_allow_error("203.0.113.0/24=corp,,10.0.0.0/8", CW_EFORMAT, "entry 2 \"\": empty entry");
    expect_allow_error("203.0.113.0/24=corp,", CW_EFORMAT, "entry 2");
    expect_allow_error("203.0.113.0/24=", CW_EFORMAT, "empty label");
    expect_allow_error("203.0.113.0/24=corp vpn", CW_EFORMAT, "label with characters");
    expect_allow_error("203.0.113.0/24=a:b", CW_EFORMAT, "label with characters");
    expect_allow_error("203.0.113.0/24=a=b", CW_EFORMAT, "label with characters");
    expect_allow_error("203.0.113.0/24=0123456789012345678901234567890123456789012345678901234567890123",
                       CW_EFORMAT, "label longer");
    expect_allow_error("203.0.113.0/24=a,203.0.113.0/24=b", CW_EFORMAT, "entry 2 \"203.0.113.0/24=b\": range listed twice");
    expect_allow_error("0.0.0.0/0", CW_EFORMAT, "every address");
    expect_allow_error("::/0=all", CW_EFORMAT, "every address");
    expect_allow_error("203.0.113.0/", CW_EFORMAT, "empty prefix length");
    expect_allow_error("203.0.113.0/024", CW_EFORMAT, "leading zero");
    expect_allow_error("203.0.113.0/2x", CW_EFORMAT, "not a number");
    expect_allow_error("::ffff:203.0.113.0/120", CW_EFORMAT, "IPv4-mapped");
    expect_allow_error("fe80::1%eth0/128", CW_EFORMAT, "not an IPv4 or IPv6 address");

    /* All or nothing: the good first entry of a rejected spec is not kept. */
    char msg[NR_MSG_MAX];
    struct nr_table *t = nr_table_new();
    assert_non_null(t);
    assert_int_equal(nr_add_allow(t, "198.51.100.0/24=ok", msg, sizeof msg), 0);
    assert_int_equal(nr_add_allow(t, "192.0.2.0/24=fine,bad", msg, sizeof msg), CW_EFORMAT);
    assert_non_null(strstr(msg, "entry 2 \"bad\""));
    /* The rejected spec's first entry may be given again: it was rolled back. */
    assert_int_equal(nr_add_allow(t, "192.0.2.0/25=again", msg, sizeof msg), 0);
    assert_int_equal(nr_build(t, msg, sizeof msg), 0);
    assert_string_equal(cls_of(t, "198.51.100.1"), "allowlisted:ok");
    assert_string_equal(cls_of(t, "192.0.2.1"), "allowlisted:again");
    assert_string_equal(cls_of(t, "192.0.2.200"), "external");
    nr_table_unref(t);

    /* A long bad entry is quoted, shortened. */
    char spec[400];
    memset(spec, 'x', sizeof spec - 1);
    spec[sizeof spec - 1] = '\0';
    expect_allow_error(spec, CW_EFORMAT, "...\": not an IPv4");
}

static void expect_load_error(const char *json, int want_rc, const char *want_in_msg)
{
    char path[64], msg[NR_MSG_MAX];
    write_tmp(path, sizeof path, json);
    struct nr_table *t = nr_table_new();
    assert_non_null(t);
    int rc = nr_load_aws(t, path, msg, sizeof msg);
    unlink(path);
    if (rc != want_rc || !strstr(msg, want_in_msg))
        fail_msg("json %s: rc %d msg \"%s\", want rc %d and \"%s\"", json, rc, msg, want_rc, want_in_msg);
    nr_table_unref(t);
}

static void test_malformed_json(void **state)
{
    (void)state;
    expect_load_error("{\"prefixes\": [ {\"ip_prefix\": \"3.4.12.4/32\",", CW_EFORMAT, "line");
    expect_load_error("", CW_EFORMAT, "line");
    expect_load_error("[]", CW_EFORMAT, "top level is not an object");
    expect_load_error("{}", CW_EFORMAT, "no \"prefixes\" array");
    expect_load_error("{\"prefixes\": {}}", CW_EFORMAT, "\"prefixes\" is not an array");
    expect_load_error("{\"prefixes\": [1]}", CW_EFORMAT, "prefixes[0]: not an object");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"3.4.12.4/32\",\"region\":\"r\",\"service\":\"S\"},"
                      "{\"ip_prefix\":\"3.4.12.4/40\",\"region\":\"r\",\"service\":\"S\"}]}",
                      CW_EFORMAT, "prefixes[1] \"3.4.12.4/40\": prefix length over 32");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"3.4.12.4\",\"region\":\"r\",\"service\":\"S\"}]}",
                      CW_EFORMAT, "no prefix length");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"3.4.12.4/24\",\"region\":\"r\",\"service\":\"S\"}]}",
                      CW_EFORMAT, "host bits");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"3.4.12.0/24\",\"service\":\"S\"}]}", CW_EFORMAT,
                      "\"region\" missing");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"3.4.12.0/24\",\"region\":\"a:b\",\"service\":\"S\"}]}",
                      CW_EFORMAT, "\"region\"");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"3.4.12.0/24\",\"region\":\"r\"}]}", CW_EFORMAT,
                      "\"service\" missing");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":3,\"region\":\"r\",\"service\":\"S\"}]}", CW_EFORMAT,
                      "no string \"ip_prefix\"");
    expect_load_error("{\"prefixes\": [], \"ipv6_prefixes\": [{\"ipv6_prefix\":\"3.4.12.0/24\",\"region\":\"r\","
                      "\"service\":\"S\"}]}", CW_EFORMAT, "ipv6_prefixes[0] \"3.4.12.0/24\": IPv4 prefix in the IPv6 list");
    expect_load_error("{\"prefixes\": [{\"ip_prefix\":\"2001:db8::/32\",\"region\":\"r\",\"service\":\"S\"}]}",
                      CW_EFORMAT, "IPv6 prefix in the IPv4 list");

    char msg[NR_MSG_MAX];
    struct nr_table *t = nr_table_new();
    assert_non_null(t);
    assert_int_equal(nr_load_aws(t, "tests/data/no-such-file.json", msg, sizeof msg), CW_EIO);
    assert_non_null(strstr(msg, "no-such-file.json"));
    assert_int_equal(nr_load_aws(t, "tests/data", msg, sizeof msg), CW_EIO);

    /* A file that fails leaves what was loaded before intact. */
    assert_int_equal(nr_load_aws(t, SAMPLE, msg, sizeof msg), 0);
    char path[64];
    write_tmp(path, sizeof path,
              "{\"prefixes\": [{\"ip_prefix\":\"8.8.8.0/24\",\"region\":\"x-1\",\"service\":\"NEW\"}, 7]}");
    assert_int_equal(nr_load_aws(t, path, msg, sizeof msg), CW_EFORMAT);
    unlink(path);
    assert_int_equal(nr_build(t, msg, sizeof msg), 0);
    assert_string_equal(cls_of(t, "8.8.8.8"), "external");
    assert_string_equal(cls_of(t, "3.4.12.4"), "aws:eu-west-1:AMAZON");
    struct nr_stats st;
    assert_int_equal(nr_table_stats(t, &st), 0);
    assert_int_equal(st.aws_prefixes, 13);
    nr_table_unref(t);
}

static void test_states_and_args(void **state)
{
    (void)state;
    char msg[NR_MSG_MAX];
    struct nr_match m;
    struct nr_table *t = nr_table_new();
    assert_non_null(t);
    assert_int_equal(nr_lookup(t, "1.2.3.4", &m), CW_EINVAL);  /* not built */
    assert_int_equal(m.cls, NR_NOT_IP);
    assert_int_equal(nr_build(t, msg, sizeof msg), 0);
    assert_int_equal(nr_build(t, msg, sizeof msg), CW_EINVAL);
    assert_int_equal(nr_load_aws(t, SAMPLE, msg, sizeof msg), CW_EINVAL);
    assert_non_null(strstr(msg, "already built"));
    assert_int_equal(nr_add_allow(t, "10.0.0.0/8", msg, sizeof msg), CW_EINVAL);
    /* An empty table still knows the private ranges. */
    assert_string_equal(cls_of(t, "10.2.3.4"), "private");
    assert_string_equal(cls_of(t, "3.4.12.4"), "external");
    assert_string_equal(cls_of(t, "2001:db8::1"), "external");
    assert_int_equal(nr_lookup(NULL, "1.2.3.4", &m), CW_EINVAL);
    assert_int_equal(nr_lookup(t, "1.2.3.4", NULL), CW_EINVAL);
    /* msg may be NULL. */
    assert_int_equal(nr_add_allow(t, "x", NULL, 0), CW_EINVAL);
    nr_table_unref(t);
    nr_table_unref(NULL);
}

static void test_binary_lookup(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, "2001:db8::/32=office");
    struct nr_match m;
    uint8_t a4[4] = {3, 80, 16, 9};
    assert_int_equal(nr_lookup_addr(t, AF_INET, a4, &m), NR_AWS);
    assert_string_equal(m.service, "CHIME_VOICECONNECTOR");
    uint8_t a6[16];
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::77", a6), 1);
    assert_int_equal(nr_lookup_addr(t, AF_INET6, a6, &m), NR_ALLOW);
    assert_string_equal(m.label, "office");
    assert_int_equal(m.family, AF_INET6);
    assert_int_equal(inet_pton(AF_INET6, "::ffff:3.4.12.4", a6), 1);
    assert_int_equal(nr_lookup_addr(t, AF_INET6, a6, &m), NR_AWS);
    assert_int_equal(m.family, AF_INET);
    assert_int_equal(nr_lookup_addr(t, AF_UNIX, a4, &m), CW_EINVAL);
    nr_table_unref(t);
}

static void test_class_string(void **state)
{
    (void)state;
    struct nr_table *t = built(SAMPLE, "198.51.100.7/32=nat-gw-a");
    struct nr_match m;
    char buf[NR_CLASS_MAX], small[8];
    assert_int_equal(nr_lookup(t, "3.80.16.1", &m), NR_AWS);
    assert_int_equal(nr_class_string(&m, buf, sizeof buf), 0);
    assert_string_equal(buf, "aws:us-east-1:CHIME_VOICECONNECTOR");
    assert_int_equal(nr_class_string(&m, small, sizeof small), CW_ENOSPC);
    assert_string_equal(small, "aws:us-");
    assert_int_equal(nr_lookup(t, "198.51.100.7", &m), NR_ALLOW);
    assert_int_equal(nr_class_string(&m, buf, sizeof buf), 0);
    assert_string_equal(buf, "allowlisted:nat-gw-a");
    assert_int_equal(nr_class_string(&m, buf, 0), CW_EINVAL);
    nr_table_unref(t);
}

/* A request holding the table it started with keeps it across a reload. */
static void test_refcount_and_slot(void **state)
{
    (void)state;
    struct nr_table *old = built(SAMPLE, NULL);
    struct nr_slot *slot = nr_slot_new(old);
    assert_non_null(slot);

    struct nr_table *req = nr_slot_get(slot);
    assert_ptr_equal(req, old);

    struct nr_table *fresh = built(SAMPLE, "3.4.12.4/32=moved");
    nr_slot_set(slot, fresh);  /* the slot's reference to old is dropped; req still holds one */
    assert_string_equal(cls_of(req, "3.4.12.4"), "aws:eu-west-1:AMAZON");
    nr_table_unref(req);

    struct nr_table *req2 = nr_slot_get(slot);
    assert_ptr_equal(req2, fresh);
    assert_string_equal(cls_of(req2, "3.4.12.4"), "allowlisted:moved");
    assert_ptr_equal(nr_table_ref(req2), fresh);
    nr_table_unref(req2);
    nr_table_unref(req2);
    nr_slot_set(slot, NULL);
    assert_null(nr_slot_get(slot));
    nr_slot_free(slot);
}

/* The lookup structure against a linear scan of the same prefixes, at every prefix boundary and
 * at pseudo-random addresses. */
struct naive {
    uint8_t net[16];
    int fam, len, cls;
};

static int naive_in(const struct naive *p, int fam, const uint8_t *a)
{
    if (p->fam != fam)
        return 0;
    int full = p->len / 8, rem = p->len % 8;
    if (memcmp(p->net, a, (size_t)full) != 0)
        return 0;
    return rem == 0 || ((p->net[full] ^ a[full]) & (uint8_t)(0xff << (8 - rem))) == 0;
}

static void test_against_linear_scan(void **state)
{
    (void)state;
    static const char *prefixes[][2] = {
        {"3.4.12.4/32", "A"}, {"3.80.0.0/12", "A"}, {"3.80.16.0/23", "A"}, {"15.193.0.0/19", "A"},
        {"15.193.0.0/24", "A"}, {"16.15.156.0/22", "A"}, {"23.228.249.0/24", "A"}, {"52.94.76.0/22", "A"},
        {"2400:7fc0:110::/48", "A"}, {"2400:7fc0:110::/56", "A"}, {"2600:9000:5200::/40", "A"},
        {"2600:9000:5201::/48", "A"}, {"2a01:578:0:7301::1/128", "A"},
        {"3.0.0.0/8", "L"}, {"3.80.16.0/24", "L"}, {"10.0.0.0/16", "L"}, {"2400:7fc0:110::/120", "L"},
        {"10.0.0.0/8", "P"}, {"172.16.0.0/12", "P"}, {"192.168.0.0/16", "P"}, {"100.64.0.0/10", "P"},
        {"127.0.0.0/8", "P"}, {"169.254.0.0/16", "P"}, {"::1/128", "P"}, {"fc00::/7", "P"}, {"fe80::/10", "P"},
    };
    enum { NP = sizeof prefixes / sizeof prefixes[0] };
    struct naive nv[NP];
    for (size_t i = 0; i < NP; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s", prefixes[i][0]);
        char *slash = strchr(text, '/');
        *slash = '\0';
        nv[i].len = (int)strtol(slash + 1, NULL, 10);
        nv[i].fam = strchr(text, ':') ? AF_INET6 : AF_INET;
        memset(nv[i].net, 0, 16);
        assert_int_equal(inet_pton(nv[i].fam, text, nv[i].net), 1);
        nv[i].cls = prefixes[i][1][0] == 'A' ? NR_AWS : prefixes[i][1][0] == 'L' ? NR_ALLOW : NR_PRIVATE;
    }
    struct nr_table *t = built(SAMPLE, "3.0.0.0/8=a,3.80.16.0/24=b,10.0.0.0/16=c,2400:7fc0:110::/120=d");

    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int iter = 0; iter < 200000; iter++) {
        int fam;
        uint8_t a[16] = {0};
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Half the time, an address next to a prefix boundary (first, last, one either side). */
        const struct naive *p = &nv[x % NP];
        fam = p->fam;
        int nbytes = fam == AF_INET ? 4 : 16;
        if ((x >> 8) & 1) {
            memcpy(a, p->net, 16);
            int last = (x >> 9) & 1, off = (x >> 10) & 1;
            int width = nbytes * 8;
            for (int b = p->len; b < width && last; b++)
                a[b / 8] |= (uint8_t)(0x80 >> (b % 8));
            /* step one address up or down */
            if (off) {
                for (int k = nbytes - 1; k >= 0; k--) {
                    if (last) {
                        if (++a[k] != 0)
                            break;
                    } else {
                        if (a[k]-- != 0)
                            break;
                    }
                }
            }
        } else {
            uint64_t y = x * 0x2545F4914F6CDD1Du;
            memcpy(a, p->net, 16);
            for (int k = (int)(((x >> 12) % 3) + 1); k < nbytes; k++) {
                y ^= y << 13;
                y ^= y >> 7;
                y ^= y << 17;
                a[k] = (uint8_t)y;
            }
        }
        int want = NR_EXTERNAL, best_len = -1, best_cls = 0;
        for (size_t i = 0; i < NP; i++) {
            if (!naive_in(&nv[i], fam, a))
                continue;
            if (nv[i].cls > best_cls || (nv[i].cls == best_cls && nv[i].len > best_len)) {
                best_cls = nv[i].cls;
                best_len = nv[i].len;
            }
        }
        if (best_len >= 0)
            want = best_cls;
        struct nr_match m;
        int got = nr_lookup_addr(t, fam, a, &m);
        char text[64];
        inet_ntop(fam, a, text, sizeof text);
        if (got != want || (best_len >= 0 && m.prefix_len != best_len))
            fail_msg("%s: class %d /%d, want %d /%d", text, got, m.prefix_len, want, best_len);
        struct nr_match mt;
        assert_int_equal(nr_lookup(t, text, &mt), got);
        assert_int_equal(mt.prefix_len, m.prefix_len);
    }
    nr_table_unref(t);
}

/* nr_parse_ip accepts exactly what inet_pton accepts, with the same bytes: on valid text in its
 * various forms, on mutations of it, and on random strings over the characters that matter. */
static void check_parse_like_pton(const char *text)
{
    uint8_t want[16] = {0}, got[16];
    int fam;
    int rc = nr_parse_ip(text, &fam, got);
    int is4 = inet_pton(AF_INET, text, want) == 1;
    int is6 = !is4 && inet_pton(AF_INET6, text, want) == 1;
    if (rc != 0) {
        if (is4 || is6)
            fail_msg("\"%s\": refused, inet_pton accepts it", text);
        return;
    }
    if (!is4 && !is6)
        fail_msg("\"%s\": accepted, inet_pton refuses it", text);
    if (is6 && fam == AF_INET) {  /* IPv4-mapped: returned as IPv4 */
        static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        assert_memory_equal(want, pre, 12);
        assert_memory_equal(got, want + 12, 4);
        return;
    }
    assert_int_equal(fam, is4 ? AF_INET : AF_INET6);
    if (memcmp(got, want, is4 ? 4 : 16) != 0)
        fail_msg("\"%s\": bytes differ from inet_pton's", text);
}

static void test_parse_matches_inet_pton(void **state)
{
    (void)state;
    static const char *fixed[] = {
        "::", "::1", "1::", "1::2", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5::1.2.3.4",
        "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6::7:8",
        "1:2:3:4:5:6:7::8", ":::", "1:::2", ":1::2", "1::2::3", "1:2", "1:", ":1", "12345::", "0000:0::",
        "ABCD:ef01::", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.4.5", "::01.2.3.4", "::256.1.1.1",
        "::a.b.c.d", "1.2.3.4:1::", "::1:", "::1::", "fe80::1%1", "[::1]", "::ffff:0:1.2.3.4",
        "1::2:3:4:5:6:7", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "0.0.0.0", "255.255.255.255",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_parse_like_pton(fixed[i]);

    static const char alphabet[] = "0123456789abcdefABCDEF::::...g% ";
    uint64_t x = 0x0123456789ABCDEFu;
#define XS() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    for (int iter = 0; iter < 300000; iter++) {
        char text[64];
        uint8_t a[16];
        int mode = (int)(XS() % 4);
        for (int k = 0; k < 16; k++) {
            /* Runs of zero groups, so "::" appears in many places. */
            a[k] = (XS() % 3 == 0) ? 0 : (uint8_t)XS();
        }
        if (XS() % 4 == 0)
            memset(a + (XS() % 12), 0, 4);
        if (mode == 0) {
            inet_ntop(AF_INET6, a, text, sizeof text);
        } else if (mode == 1) {
            /* Full form, random case and group widths. */
            size_t o = 0;
            for (int gi = 0; gi < 8; gi++) {
                unsigned v = (unsigned)a[2 * gi] << 8 | a[2 * gi + 1];
                o += (size_t)snprintf(text + o, sizeof text - o, XS() & 1 ? "%s%x" : "%s%04X", gi ? ":" : "", v);
            }
        } else if (mode == 2) {
            /* Valid text with one character deleted, replaced or inserted. */
            inet_ntop(XS() % 4 ? AF_INET6 : AF_INET, a, text, sizeof text);
            size_t len = strlen(text), at = (size_t)(XS() % (len + 1));
            char c = alphabet[XS() % (sizeof alphabet - 1)];
            int op = (int)(XS() % 3);
            if (op == 0 && at < len)
                memmove(text + at, text + at + 1, len - at);
            else if (op == 1 && at < len)
                text[at] = c;
            else if (len + 1 < sizeof text) {
                memmove(text + at + 1, text + at, len - at + 1);
                text[at] = c;
            }
        } else {
            size_t len = (size_t)(XS() % 46);
            for (size_t k = 0; k < len; k++)
                text[k] = alphabet[XS() % (sizeof alphabet - 1)];
            text[len] = '\0';
        }
        check_parse_like_pton(text);
    }
#undef XS
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_aws),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_ipv6_text_forms),
        cmocka_unit_test(test_private),
        cmocka_unit_test(test_not_ip),
        cmocka_unit_test(test_allow_labels),
        cmocka_unit_test(test_allow_beats_aws),
        cmocka_unit_test(test_allow_malformed),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_states_and_args),
        cmocka_unit_test(test_binary_lookup),
        cmocka_unit_test(test_class_string),
        cmocka_unit_test(test_refcount_and_slot),
        cmocka_unit_test(test_against_linear_scan),
        cmocka_unit_test(test_parse_matches_inet_pton),
    };
    return cmocka_run_group_tests_name("netranges", tests, NULL, NULL);
}
