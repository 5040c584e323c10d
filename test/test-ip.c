/* Tests for cnet_is_ip / cnet_is_ipv4 / cnet_is_ipv6 / cnet_is_ip_n.
 *
 * Part 1: fixed vectors from NODE-NET-BEHAVIOURS.md sections 1.1 (IP-01 to
 * IP-17) and 2.4, plus the lists in Node's own test-net-isip*.js.
 * Part 2: a differential run against the real `node` (CNET_NODE, default
 * "node") over a fixed-seed corpus of random and mutated addresses, plus
 * every fixed vector, so the hand-written expectations are checked too.
 *
 * Exit status: 0 all passed, 1 a check failed, 77 node could not be run
 * (after the fixed vectors passed).
 */

/* popen, mkstemp and fdopen are POSIX; ask for them even under -std=c11. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "cnet.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKIP_STATUS 77
#define MAX_LEN 128
#define CORPUS_RANDOM 8000
#define CORPUS_STRUCTURED 8000
#define CORPUS_MUTATED 14000
#define MAX_DISAGREEMENTS_SHOWN 20

struct vector {
  const char *id;
  const char *s;
  int want; /* what Node's net.isIP returns */
};

/* Counted inputs, for the embedded-NUL and not-NUL-terminated cases. */
struct counted {
  const char *id;
  const char *s;
  size_t len;
  int want;
};

static const struct vector vectors[] = {
    {"IP-01", "127.0.0.1", 4},
    {"IP-01", "::1", 6},
    {"IP-01", "example.com", 0},
    {"IP-01", "0", 0},
    {"IP-01", "", 0},

    {"IP-02", "0.0.0.0", 4},
    {"IP-02", "127.0.0.1", 4},
    {"IP-02", "255.255.255.255", 4},
    {"IP-02", "9.99.199.249", 4},

    {"IP-03", "01.2.3.4", 0},
    {"IP-03", "127.000.000.001", 0},
    {"IP-03", "0000000192.168.0.200", 0},
    {"IP-03", "1.2.3.00", 0},
    {"IP-03", "1.2.03.4", 0},

    {"IP-04", "127.1", 0},
    {"IP-04", "0x7f.0.0.1", 0},
    {"IP-04", "1.2.3", 0},
    {"IP-04", "1.2.3.4.5", 0},
    {"IP-04", "256.0.0.1", 0},
    {"IP-04", "999.2.3.4", 0},
    {"IP-04", ".1.2.3.4", 0},
    {"IP-04", "1..2.3.4", 0},
    {"IP-04", "1.2.3.4.", 0},
    {"IP-04", "1.2.3.1000", 0},

    {"IP-05", " 127.0.0.1", 0},
    {"IP-05", "127.0.0.1\n", 0},
    {"IP-05", "127.0.0.1 ", 0},
    {"IP-05", "2001:0000:1234:0000:0000:C1C0:ABCD:0876 0", 0},
    {"IP-05", "::1\n", 0},
    {"IP-05", "\t::1", 0},

    {"IP-06", "127.0.0.1/24", 0},
    {"IP-06", "[::1]", 0},
    {"IP-06", "x127.0.0.1", 0},
    {"IP-06", "127.0.0.1:80", 0},
    {"IP-06", "::1/128", 0},

    {"IP-07", "0000:0000:0000:0000:0000:0000:0000:0000", 6},
    {"IP-07", "ABCD:abcd:AbCd:1:12:123:1234:f", 6},
    {"IP-07", "00000::", 0},
    {"IP-07", "12345::", 0},
    {"IP-07", "::00000", 0},
    {"IP-07", "1:2:3:4:5:6:7:12345", 0},
    {"IP-07", "g::", 0},

    {"IP-08", "::", 6},
    {"IP-08", "1::", 6},
    {"IP-08", "::1", 6},
    {"IP-08", "1:2:3:4:5:6:7::", 6},
    {"IP-08", "::2:3:4:5:6:7:8", 6},
    {"IP-08", "1::2::3", 0},
    {"IP-08", "2001::FFD3::57ab", 0},
    {"IP-08", ":::", 0},
    {"IP-08", "1:::3:4:5", 0},
    {"IP-08", "::::", 0},
    {"IP-08", "1::::2", 0},

    {"IP-09", "1::2:3:4:5:6:7:8", 0},
    {"IP-09", "1:2:3:4:5:6:7:8:9", 0},
    {"IP-09", "1:2:3:4:5:6:7", 0},
    {"IP-09", "1:2:3:4:5:6:7:8::", 0},
    {"IP-09", "::1:2:3:4:5:6:7:8", 0},

    {"IP-10", ":1", 0},
    {"IP-10", "1:", 0},
    {"IP-10", ":2001:252:0:1::2008:6", 0},
    {"IP-10", "2001:252:0:1::2008:6:", 0},
    {"IP-10", "1111::5555:", 0},
    {"IP-10", ":", 0},

    {"IP-11", "::ffff:192.168.1.26", 6},
    {"IP-11", "1:2:3:4:5:6:1.2.3.4", 6},
    {"IP-11", "1::5:11.22.33.44", 6},
    {"IP-11", "1:2:3:4:5::1.2.3.4", 6},
    {"IP-11", "::1.2.3.4", 6},
    {"IP-11", "1:2:3:4:5:6:7:1.2.3.4", 0},
    {"IP-11", "1.2.3.4::", 0},
    {"IP-11", "1.2.3.4:1111::5555", 0},
    {"IP-11", "1:2:3:4:5:6::1.2.3.4", 0},
    {"IP-11", "1:2:3:4:5:1.2.3.4", 0},
    {"IP-11", "::1.2.3.4:1", 0},
    {"IP-11", "1::1.2.3.4:5", 0},

    {"IP-12", "::ffff:257.1.2.3", 0},
    {"IP-12", "::01.2.3.4", 0},
    {"IP-12", "fe80::204:61ff:254.157.241.086", 0},
    {"IP-12", "::ffff:2.3.4", 0},
    {"IP-12", "::1.2.3.4.5", 0},

    {"IP-13", "fe80::2008%eth0", 6},
    {"IP-13", "fe80::2008%eth0.0", 6},
    {"IP-13", "fe80::7:8%1", 6},
    {"IP-13", "::%eth0", 6},
    {"IP-13", "::ffff:1.2.3.4%eth0", 6},
    {"IP-13", "fe80::1%a-b.c:d", 6},
    {"IP-13", "1:2:3:4:5:6:7:8%Z", 6},
    {"IP-13", "::%::", 6},
    {"IP-13", "fe80::1%", 0},
    {"IP-13", "fe80::2008%eth0@1", 0},
    {"IP-13", "fe80::1%a_b", 0},
    {"IP-13", "fe80::1%%a", 0},
    {"IP-13", "fe80::1%a%b", 0},
    {"IP-13", "fe80::1%a b", 0},
    {"IP-13", "%eth0", 0},
    {"IP-13", "1::2::3%eth0", 0},

    {"IP-14", "1.2.3.4%eth0", 0},
    {"IP-14", "1.2.3.4%1", 0},

    {"IP-15", "::ffff:127.0.0.1", 6},

    /* JS stringifies non-strings; these are the strings it would see. */
    {"IP-16", "undefined", 0},
    {"IP-16", "null", 0},
    {"IP-16", "123", 0},
    {"IP-16", "true", 0},
    {"IP-16", "[object Object]", 0},
    {"IP-16", "bla", 0},
    {"IP-16", "::2001:252:1:255.255.255.255", 6},

    /* Arabic-Indic digits and a fullwidth digit, as UTF-8. */
    {"IP-17", "\xd9\xa1\xd9\xa2\xd9\xa7.\xd9\xa0.\xd9\xa0.\xd9\xa1", 0},
    {"IP-17", "::\xd9\xa1", 0},
    {"IP-17", "\xef\xbc\x91.2.3.4", 0},
    {"IP-17", "::%\xd9\xa1", 0},
    {"IP-17", "\xff::", 0},

    {"2.4 valid IPv4", "0.0.0.0", 4},
    {"2.4 valid IPv4", "8.8.8.8", 4},
    {"2.4 valid IPv4", "127.0.0.1", 4},
    {"2.4 valid IPv4", "100.100.100.100", 4},
    {"2.4 valid IPv4", "223.255.255.255", 4},
    {"2.4 valid IPv4", "255.255.255.255", 4},

    {"2.4 invalid IPv4", ".100.100.100.100", 0},
    {"2.4 invalid IPv4", "100..100.100.100.", 0},
    {"2.4 invalid IPv4", "100.100.100.100.", 0},
    {"2.4 invalid IPv4", "999.999.999.999", 0},
    {"2.4 invalid IPv4", "256.256.256.256", 0},
    {"2.4 invalid IPv4", "256.100.100.100.100", 0},
    {"2.4 invalid IPv4", "123.123.123", 0},
    {"2.4 invalid IPv4", "http://123.123.123", 0},
    {"2.4 invalid IPv4", "1000.2.3.4", 0},
    {"2.4 invalid IPv4", "0000000192.168.0.200", 0},
    {"2.4 invalid IPv4", "192.168.0.2000000000", 0},
    {"2.4 invalid IPv4", "01.2.3.4", 0},
    {"2.4 invalid IPv4", "127.1", 0},
    {"2.4 invalid IPv4", "0x7f.0.0.1", 0},
    {"2.4 invalid IPv4", "127.0.0.1\n", 0},

    {"2.4 valid IPv6", "::", 6},
    {"2.4 valid IPv6", "1::", 6},
    {"2.4 valid IPv6", "::1", 6},
    {"2.4 valid IPv6", "1::8", 6},
    {"2.4 valid IPv6", "1:2:3:4:5:6:7:8", 6},
    {"2.4 valid IPv6", "1:2:3:4:5:6::8", 6},
    {"2.4 valid IPv6", "1:2:3:4:5:6:7::", 6},
    {"2.4 valid IPv6", "::2:3:4:5:6:7:8", 6},
    {"2.4 valid IPv6", "2001:0000:1234:0000:0000:C1C0:ABCD:0876", 6},
    {"2.4 valid IPv6", "::ffff:192.168.1.26", 6},
    {"2.4 valid IPv6", "1:2:3:4:5:6:1.2.3.4", 6},
    {"2.4 valid IPv6", "1::5:11.22.33.44", 6},
    {"2.4 valid IPv6", "fe80::217:f2ff:254.7.237.98", 6},
    {"2.4 valid IPv6", "::FFFF:129.144.52.38", 6},
    {"2.4 valid IPv6", "0:0:0:0:0:FFFF:129.144.52.38", 6},
    {"2.4 valid IPv6", "a:bb:ccc:dddd:000e:00f:0f::", 6},
    {"2.4 valid IPv6", "fe80::7:8%eth0", 6},
    {"2.4 valid IPv6", "fe80::7:8%1", 6},
    {"2.4 valid IPv6", "fe80::2008%eth0.0", 6},
    {"2.4 valid IPv6", "::%eth0", 6},
    {"2.4 valid IPv6", "::ffff:1.2.3.4%eth0", 6},
    {"2.4 valid IPv6", "fe80::1%a-b.c:d", 6},

    {"2.4 invalid IPv6", "", 0},
    {"2.4 invalid IPv6", "1:", 0},
    {"2.4 invalid IPv6", ":1", 0},
    {"2.4 invalid IPv6", "11:36:12", 0},
    {"2.4 invalid IPv6", "02001:0000:1234:0000:0000:C1C0:ABCD:0876", 0},
    {"2.4 invalid IPv6", "2001:0000:1234:0000:00001:C1C0:ABCD:0876", 0},
    {"2.4 invalid IPv6", "2001:0000:1234: 0000:0000:C1C0:ABCD:0876", 0},
    {"2.4 invalid IPv6", "3ffe:0b00:0000:0001:0000:0000:000a", 0},
    {"2.4 invalid IPv6", "FF02:0000:0000:0000:0000:0000:0000:0000:0001", 0},
    {"2.4 invalid IPv6", "3ffe:b00::1::a", 0},
    {"2.4 invalid IPv6", "::1111:2222:3333:4444:5555:6666::", 0},
    {"2.4 invalid IPv6", "1::5:400.2.3.4", 0},
    {"2.4 invalid IPv6", "::256.2.3.4", 0},
    {"2.4 invalid IPv6", "::1.2.3.900", 0},
    {"2.4 invalid IPv6", "1111:2222:3333::5555:", 0},
    {"2.4 invalid IPv6", ":::5555", 0},
    {"2.4 invalid IPv6", "1.2.3.4::", 0},
    {"2.4 invalid IPv6", "1.2.3.4:1111::5555", 0},
    {"2.4 invalid IPv6", "2001:db8:85a3::8a2e:37023:7334", 0},
    {"2.4 invalid IPv6", "2001:db8:85a3::8a2e:370k:7334", 0},
    {"2.4 invalid IPv6", "::ffff:2.3.4", 0},
    {"2.4 invalid IPv6", "::ffff:257.1.2.3", 0},
    {"2.4 invalid IPv6", "fe80::2008%eth0@1", 0},
    {"2.4 invalid IPv6", "fe80::1%", 0},
    {"2.4 invalid IPv6", "fe80::1%a_b", 0},
    {"2.4 invalid IPv6", "[::1]", 0},
    {"2.4 invalid IPv6", "1.2.3.4%eth0", 0},
    {"2.4 invalid IPv6", "::anything", 0},
    {"2.4 invalid IPv6", "0000:0000:0000:0000:0000:0000:12345:0000", 0},

    /* Node's test-net-isip.js (string inputs). */
    {"T:isip", "x127.0.0.1", 0},
    {"T:isip", "0000:0000:0000:0000:0000:0000:0000:0000::0000", 0},
    {"T:isip", "1050:0:0:0:5:600:300c:326b", 6},
    {"T:isip", "2001:252:0:1::2008:6", 6},
    {"T:isip", "2001:dead:beef:1::2008:6", 6},
    {"T:isip", "2001::", 6},
    {"T:isip", "2001:dead::", 6},
    {"T:isip", "2001:dead:beef::", 6},
    {"T:isip", "2001:dead:beef:1::", 6},
    {"T:isip", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6},
    {"T:isip", ":2001:252:0:1::2008:6:", 0},
    {"T:isip", "2001:252::1::2008:6", 0},
    {"T:isip", "::2001:252:1:2008:6", 6},
    {"T:isip", "::2001:252:1:1.1.1.1", 6},
    {"T:isip", "::2001:252:1:255.255.255.255.76", 0},

    /* Node's test-net-isipv4.js. */
    {"T:isipv4", "192.168.0.1", 4},
    {"T:isipv4", "18.101.25.153", 4},
    {"T:isipv4", "123.23.34.2", 4},
    {"T:isipv4", "172.26.168.134", 4},
    {"T:isipv4", "212.58.241.131", 4},
    {"T:isipv4", "128.0.0.0", 4},
    {"T:isipv4", "23.71.254.72", 4},
    {"T:isipv4", "192.0.2.235", 4},
    {"T:isipv4", "99.198.122.146", 4},
    {"T:isipv4", "46.51.197.88", 4},
    {"T:isipv4", "173.194.34.134", 4},
    {"T:isipv4", "999.2.3.4", 0},

    /* Node's test-net-isipv6.js, valid list. */
    {"T:isipv6", "1::7:8", 6},
    {"T:isipv6", "1:2:3:4:5::7:8", 6},
    {"T:isipv6", "1:2:3:4:5::8", 6},
    {"T:isipv6", "1:2:3::8", 6},
    {"T:isipv6", "1::4:5:6:7:8", 6},
    {"T:isipv6", "1::6:7:8", 6},
    {"T:isipv6", "1::3:4:5:6:7:8", 6},
    {"T:isipv6", "1:2:3:4::6:7:8", 6},
    {"T:isipv6", "1:2::4:5:6:7:8", 6},
    {"T:isipv6", "1:2::8", 6},
    {"T:isipv6", "3ffe:0b00:0000:0000:0001:0000:0000:000a", 6},
    {"T:isipv6", "FF02:0000:0000:0000:0000:0000:0000:0001", 6},
    {"T:isipv6", "0000:0000:0000:0000:0000:0000:0000:0001", 6},
    {"T:isipv6", "2::10", 6},
    {"T:isipv6", "ff02::1", 6},
    {"T:isipv6", "fe80::", 6},
    {"T:isipv6", "2002::", 6},
    {"T:isipv6", "2001:db8::", 6},
    {"T:isipv6", "2001:0db8:1234::", 6},
    {"T:isipv6", "::ffff:0:0", 6},
    {"T:isipv6", "::ffff:192.168.1.1", 6},
    {"T:isipv6", "1:2:3:4::8", 6},
    {"T:isipv6", "1::2:3:4:5:6:7", 6},
    {"T:isipv6", "1::2:3:4:5:6", 6},
    {"T:isipv6", "1::2:3:4:5", 6},
    {"T:isipv6", "1::2:3:4", 6},
    {"T:isipv6", "1::2:3", 6},
    {"T:isipv6", "::2:3:4:5:6:7", 6},
    {"T:isipv6", "::2:3:4:5:6", 6},
    {"T:isipv6", "::2:3:4:5", 6},
    {"T:isipv6", "::2:3:4", 6},
    {"T:isipv6", "::2:3", 6},
    {"T:isipv6", "::8", 6},
    {"T:isipv6", "1:2:3:4:5:6::", 6},
    {"T:isipv6", "1:2:3:4:5::", 6},
    {"T:isipv6", "1:2:3:4::", 6},
    {"T:isipv6", "1:2:3::", 6},
    {"T:isipv6", "1:2::", 6},
    {"T:isipv6", "1:2:3:4::7:8", 6},
    {"T:isipv6", "1:2:3::7:8", 6},
    {"T:isipv6", "1:2::7:8", 6},
    {"T:isipv6", "1:2:3:4::1.2.3.4", 6},
    {"T:isipv6", "1:2:3::1.2.3.4", 6},
    {"T:isipv6", "1:2::1.2.3.4", 6},
    {"T:isipv6", "1::1.2.3.4", 6},
    {"T:isipv6", "1:2:3:4::5:1.2.3.4", 6},
    {"T:isipv6", "1:2:3::5:1.2.3.4", 6},
    {"T:isipv6", "1:2::5:1.2.3.4", 6},
    {"T:isipv6", "1::5:1.2.3.4", 6},
    {"T:isipv6", "fe80::217:f2ff:fe07:ed62", 6},
    {"T:isipv6", "2001:DB8:0:0:8:800:200C:417A", 6},
    {"T:isipv6", "FF01:0:0:0:0:0:0:101", 6},
    {"T:isipv6", "0:0:0:0:0:0:0:1", 6},
    {"T:isipv6", "0:0:0:0:0:0:0:0", 6},
    {"T:isipv6", "2001:DB8::8:800:200C:417A", 6},
    {"T:isipv6", "FF01::101", 6},
    {"T:isipv6", "0:0:0:0:0:0:13.1.68.3", 6},
    {"T:isipv6", "::13.1.68.3", 6},
    {"T:isipv6", "fe80:0000:0000:0000:0204:61ff:fe9d:f156", 6},
    {"T:isipv6", "fe80:0:0:0:204:61ff:fe9d:f156", 6},
    {"T:isipv6", "fe80::204:61ff:fe9d:f156", 6},
    {"T:isipv6", "fe80:0:0:0:204:61ff:254.157.241.86", 6},
    {"T:isipv6", "fe80::204:61ff:254.157.241.86", 6},
    {"T:isipv6", "fe80::1", 6},
    {"T:isipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", 6},
    {"T:isipv6", "2001:db8:85a3:0:0:8a2e:370:7334", 6},
    {"T:isipv6", "2001:db8:85a3::8a2e:370:7334", 6},
    {"T:isipv6", "2001:0db8:0000:0000:0000:0000:1428:57ab", 6},
    {"T:isipv6", "2001:0db8:0000:0000:0000::1428:57ab", 6},
    {"T:isipv6", "2001:0db8:0:0:0:0:1428:57ab", 6},
    {"T:isipv6", "2001:0db8:0:0::1428:57ab", 6},
    {"T:isipv6", "2001:0db8::1428:57ab", 6},
    {"T:isipv6", "2001:db8::1428:57ab", 6},
    {"T:isipv6", "::ffff:12.34.56.78", 6},
    {"T:isipv6", "::ffff:0c22:384e", 6},
    {"T:isipv6", "2001:0db8:1234:0000:0000:0000:0000:0000", 6},
    {"T:isipv6", "2001:0db8:1234:ffff:ffff:ffff:ffff:ffff", 6},
    {"T:isipv6", "2001:db8:a::123", 6},
    {"T:isipv6", "::ffff:192.0.2.128", 6},
    {"T:isipv6", "::ffff:c000:280", 6},
    {"T:isipv6", "a:b:c:d:e:f:f1:f2", 6},
    {"T:isipv6", "a:b:c::d:e:f:f1", 6},
    {"T:isipv6", "a:b:c::d:e:f", 6},
    {"T:isipv6", "a:b:c::d:e", 6},
    {"T:isipv6", "a:b:c::d", 6},
    {"T:isipv6", "::a", 6},
    {"T:isipv6", "::a:b:c", 6},
    {"T:isipv6", "::a:b:c:d:e:f:f1", 6},
    {"T:isipv6", "a::", 6},
    {"T:isipv6", "a:b:c::", 6},
    {"T:isipv6", "a:b:c:d:e:f:f1::", 6},
    {"T:isipv6", "0:a:0:a:0:0:0:a", 6},
    {"T:isipv6", "0:a:0:0:a:0:0:a", 6},
    {"T:isipv6", "2001:db8:1:1:1:1:0:0", 6},
    {"T:isipv6", "2001:db8:1:1:1:0:0:0", 6},
    {"T:isipv6", "2001:db8:1:1:0:0:0:0", 6},
    {"T:isipv6", "2001:db8:1:0:0:0:0:0", 6},
    {"T:isipv6", "2001:db8:0:0:0:0:0:0", 6},
    {"T:isipv6", "2001:0:0:0:0:0:0:0", 6},
    {"T:isipv6", "A:BB:CCC:DDDD:000E:00F:0F::", 6},
    {"T:isipv6", "0:0:0:0:0:0:0:a", 6},
    {"T:isipv6", "0:0:0:0:a:0:0:0", 6},
    {"T:isipv6", "0:0:0:a:0:0:0:0", 6},
    {"T:isipv6", "a:0:0:a:0:0:a:a", 6},
    {"T:isipv6", "a:0:0:a:0:0:0:a", 6},
    {"T:isipv6", "a:0:0:0:a:0:0:a", 6},
    {"T:isipv6", "a:0:0:0:a:0:0:0", 6},
    {"T:isipv6", "a:0:0:0:0:0:0:0", 6},

    /* Node's test-net-isipv6.js, invalid list (entries not already above). */
    {"T:isipv6 not", "2001:1:1:1:1:1:255Z255X255Y255", 0},
    {"T:isipv6 not", "1:2:3::4:5::7:8", 0},
    {"T:isipv6 not", "12345::6:7:8", 0},
    {"T:isipv6 not", "1::5:260.2.3.4", 0},
    {"T:isipv6 not", "1::5:256.2.3.4", 0},
    {"T:isipv6 not", "1::5:1.256.3.4", 0},
    {"T:isipv6 not", "1::5:1.2.256.4", 0},
    {"T:isipv6 not", "1::5:1.2.3.256", 0},
    {"T:isipv6 not", "1::5:300.2.3.4", 0},
    {"T:isipv6 not", "1::5:1.300.3.4", 0},
    {"T:isipv6 not", "1::5:1.2.300.4", 0},
    {"T:isipv6 not", "1::5:1.2.3.300", 0},
    {"T:isipv6 not", "1::5:900.2.3.4", 0},
    {"T:isipv6 not", "1::5:1.900.3.4", 0},
    {"T:isipv6 not", "1::5:1.2.900.4", 0},
    {"T:isipv6 not", "1::5:1.2.3.900", 0},
    {"T:isipv6 not", "1::5:300.300.300.300", 0},
    {"T:isipv6 not", "1::5:3000.30.30.30", 0},
    {"T:isipv6 not", "1::400.2.3.4", 0},
    {"T:isipv6 not", "1::260.2.3.4", 0},
    {"T:isipv6 not", "1::256.2.3.4", 0},
    {"T:isipv6 not", "1::1.256.3.4", 0},
    {"T:isipv6 not", "1::1.2.256.4", 0},
    {"T:isipv6 not", "1::1.2.3.256", 0},
    {"T:isipv6 not", "1::300.2.3.4", 0},
    {"T:isipv6 not", "1::1.300.3.4", 0},
    {"T:isipv6 not", "1::1.2.300.4", 0},
    {"T:isipv6 not", "1::1.2.3.300", 0},
    {"T:isipv6 not", "1::900.2.3.4", 0},
    {"T:isipv6 not", "1::1.900.3.4", 0},
    {"T:isipv6 not", "1::1.2.900.4", 0},
    {"T:isipv6 not", "1::1.2.3.900", 0},
    {"T:isipv6 not", "1::300.300.300.300", 0},
    {"T:isipv6 not", "1::3000.30.30.30", 0},
    {"T:isipv6 not", "::400.2.3.4", 0},
    {"T:isipv6 not", "::260.2.3.4", 0},
    {"T:isipv6 not", "::1.256.3.4", 0},
    {"T:isipv6 not", "::1.2.256.4", 0},
    {"T:isipv6 not", "::1.2.3.256", 0},
    {"T:isipv6 not", "::300.2.3.4", 0},
    {"T:isipv6 not", "::1.300.3.4", 0},
    {"T:isipv6 not", "::1.2.300.4", 0},
    {"T:isipv6 not", "::1.2.3.300", 0},
    {"T:isipv6 not", "::900.2.3.4", 0},
    {"T:isipv6 not", "::1.900.3.4", 0},
    {"T:isipv6 not", "::1.2.900.4", 0},
    {"T:isipv6 not", "::300.300.300.300", 0},
    {"T:isipv6 not", "::3000.30.30.30", 0},
    {"T:isipv6 not", "2001:DB8:0:0:8:800:200C:417A:221", 0},
    {"T:isipv6 not", "FF01::101::2", 0},
    {"T:isipv6 not", "1111:2222:3333:4444::5555:", 0},
    {"T:isipv6 not", "1111:2222::5555:", 0},
    {"T:isipv6 not", "::5555:", 0},
    {"T:isipv6 not", "1111:", 0},
    {"T:isipv6 not", ":1111:2222:3333:4444::5555", 0},
    {"T:isipv6 not", ":1111:2222:3333::5555", 0},
    {"T:isipv6 not", ":1111:2222::5555", 0},
    {"T:isipv6 not", ":1111::5555", 0},
    {"T:isipv6 not", "1.2.3.4:1111:2222:3333:4444::5555", 0},
    {"T:isipv6 not", "1.2.3.4:1111:2222:3333::5555", 0},
    {"T:isipv6 not", "1.2.3.4:1111:2222::5555", 0},
    {"T:isipv6 not", "1.2.3.4::5555", 0},
    {"T:isipv6 not", "fe80:0000:0000:0000:0204:61ff:254.157.241.086", 0},
    {"T:isipv6 not", "ldkfj", 0},
    {"T:isipv6 not", "1:2:3::4:5:6:7:8:9", 0},
    {"T:isipv6 not", "::ffff:12345678901234567890.1.26", 0},
};

static const struct counted counted_vectors[] = {
    /* Embedded NUL: Node strings can hold U+0000 and it matches nothing. */
    {"IP-16 NUL", "1.2.3.4\0", 8, 0},
    {"IP-16 NUL",
     "\0"
     "1.2.3.4",
     8, 0},
    {"IP-16 NUL", "1.2\0.3.4", 8, 0},
    {"IP-16 NUL", "::1\0", 4, 0},
    {"IP-16 NUL", "\0::1", 4, 0},
    {"IP-16 NUL", "::1%eth\0", 8, 0},
    {"IP-16 NUL", "fe80::1%e\0th0", 13, 0},
    {"IP-16 NUL", "\0", 1, 0},
    /* The length, not a NUL, ends the input. */
    {"IP-16 counted", "1.2.3.4xyz", 7, 4},
    {"IP-16 counted", "1.2.3.4.5", 7, 4},
    {"IP-16 counted", "::1 trailing", 3, 6},
    {"IP-16 counted", "fe80::1%eth0", 7, 6},
    {"IP-16 counted", "fe80::1%eth0", 8, 0},
    {"IP-16 counted", "1.2.3.4", 6, 0},
    {"IP-16 counted", "1.2.3.4", 0, 0},
};

static unsigned passed;
static unsigned failed;

/* Prints s with non-printable bytes escaped, so failures are readable. */
static void print_escaped(const char *s, size_t len) {
  putchar('"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];

    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c >= 0x20 && c < 0x7f)
      putchar(c);
    else
      printf("\\x%02x", c);
  }
  putchar('"');
}

static void check(const char *id, const char *what, const char *s, size_t len,
                  int want, int got) {
  if (want == got) {
    passed++;
    return;
  }
  failed++;
  printf("FAIL %s: %s(", id, what);
  print_escaped(s, len);
  printf(") expected %d, got %d\n", want, got);
}

/* Runs the counted form on an exact-size heap copy, so that ASan reports
 * any read past len. */
static int is_ip_exact_copy(const char *s, size_t len) {
  char *copy = malloc(len > 0 ? len : 1);
  int r;

  if (copy == NULL) {
    perror("malloc");
    exit(1);
  }
  memcpy(copy, s, len);
  r = cnet_is_ip_n(copy, len);
  free(copy);
  return r;
}

static void check_vector(const struct vector *v) {
  size_t len = strlen(v->s);

  check(v->id, "cnet_is_ip", v->s, len, v->want, cnet_is_ip(v->s));
  check(v->id, "cnet_is_ipv4", v->s, len, v->want == 4, cnet_is_ipv4(v->s));
  check(v->id, "cnet_is_ipv6", v->s, len, v->want == 6, cnet_is_ipv6(v->s));
  check(v->id, "cnet_is_ip_n", v->s, len, v->want, cnet_is_ip_n(v->s, len));
  check(v->id, "cnet_is_ip_n(unterminated)", v->s, len, v->want,
        is_ip_exact_copy(v->s, len));
}

static void check_fixed(void) {
  size_t nv = sizeof(vectors) / sizeof(vectors[0]);
  size_t nc = sizeof(counted_vectors) / sizeof(counted_vectors[0]);

  for (size_t i = 0; i < nv; i++)
    check_vector(&vectors[i]);
  for (size_t i = 0; i < nc; i++) {
    const struct counted *c = &counted_vectors[i];

    check(c->id, "cnet_is_ip_n", c->s, c->len, c->want,
          is_ip_exact_copy(c->s, c->len));
  }
  check("IP-16 NULL", "cnet_is_ip", "NULL", 4, 0, cnet_is_ip(NULL));
  check("IP-16 NULL", "cnet_is_ipv4", "NULL", 4, 0, cnet_is_ipv4(NULL));
  check("IP-16 NULL", "cnet_is_ipv6", "NULL", 4, 0, cnet_is_ipv6(NULL));
  check("IP-16 NULL", "cnet_is_ip_n", "NULL, 0", 7, 0, cnet_is_ip_n(NULL, 0));
  check("IP-16 NULL", "cnet_is_ip_n", "NULL, 9", 7, 0, cnet_is_ip_n(NULL, 9));
}

/* ---- Corpus generation ------------------------------------------------ */

/* splitmix64: tiny, fixed-seed, same sequence on every platform. */
static uint64_t rng_state = 0x636e65742d6970ULL;

static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rng_below(size_t n) {
  return (size_t)(rng_next() % n);
}

static const char alphabet[] = "0123456789abcdefABCDEF:.%xz-_ ";
static const char zone_alphabet[] = "0123456789azAZ.:-eth_@%/ ";
static const char hex_digits[] = "0123456789abcdefABCDEF";

struct str {
  char s[MAX_LEN];
  size_t len;
};

static char pick(const char *set) {
  return set[rng_below(strlen(set))];
}

static void append(struct str *b, const char *s) {
  size_t n = strlen(s);

  if (b->len + n < MAX_LEN) {
    memcpy(b->s + b->len, s, n);
    b->len += n;
  }
}

static void append_char(struct str *b, char c) {
  char one[2] = {c, '\0'};

  append(b, one);
}

static void gen_random(struct str *b) {
  size_t n = rng_below(46);

  b->len = 0;
  for (size_t i = 0; i < n; i++)
    append_char(b, pick(alphabet));
}

/* Mostly valid octets, with the boundary and leading-zero cases. */
static void append_octet(struct str *b) {
  static const char *const octets[] = {
      "0",   "1",   "9",   "10",  "99",  "100", "199", "200", "249",  "250",
      "255", "256", "260", "300", "999", "01",  "00",  "000", "1000", "",
  };
  size_t n = sizeof(octets) / sizeof(octets[0]);

  if (rng_below(3) == 0)
    append(b, octets[rng_below(n)]);
  else
    append(b, octets[rng_below(11)]); /* the valid ones */
}

static void append_ipv4(struct str *b) {
  size_t n = rng_below(10) == 0 ? 3 + rng_below(3) : 4;

  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      append_char(b, '.');
    append_octet(b);
  }
}

static void append_h16(struct str *b) {
  size_t n = rng_below(20) == 0 ? rng_below(7) : 1 + rng_below(4);

  for (size_t i = 0; i < n; i++)
    append_char(b, pick(hex_digits));
}

static void append_zone(struct str *b) {
  size_t n = rng_below(6);

  append_char(b, '%');
  for (size_t i = 0; i < n; i++)
    append_char(b, rng_below(4) == 0 ? pick(zone_alphabet) : pick("eth0"));
}

/* An IPv6-shaped string: 0..9 groups, usually one "::" somewhere, maybe
 * an IPv4 tail and a zone.  Most are valid or one step from valid. */
static void gen_ipv6(struct str *b) {
  size_t groups = rng_below(10);
  bool v4 = rng_below(3) == 0;
  size_t gap = rng_below(10) < 7 ? rng_below(groups + 1) : SIZE_MAX;

  b->len = 0;
  for (size_t i = 0; i <= groups; i++) {
    if (i == gap)
      append(b, "::");
    else if (i > 0 && i < groups)
      append_char(b, ':');
    if (i == groups)
      break;
    if (i == groups - 1 && v4)
      append_ipv4(b);
    else
      append_h16(b);
  }
  if (rng_below(5) == 0)
    append_zone(b);
}

static void gen_structured(struct str *b) {
  if (rng_below(4) == 0) {
    b->len = 0;
    append_ipv4(b);
    if (rng_below(10) == 0)
      append_zone(b);
  } else {
    gen_ipv6(b);
  }
}

static void insert_at(struct str *b, size_t pos, const char *s) {
  size_t n = strlen(s);

  if (b->len + n >= MAX_LEN)
    return;
  memmove(b->s + pos + n, b->s + pos, b->len - pos);
  memcpy(b->s + pos, s, n);
  b->len += n;
}

static void delete_at(struct str *b, size_t pos, size_t n) {
  memmove(b->s + pos, b->s + pos + n, b->len - pos - n);
  b->len -= n;
}

/* Position of a random field start (start of string or after ':'/'.'). */
static size_t random_field_start(const struct str *b) {
  size_t start = rng_below(b->len + 1);

  while (start > 0 && b->s[start - 1] != ':' && b->s[start - 1] != '.')
    start--;
  return start;
}

/* Replaces the digit run at a random field start with "255" or "256". */
static void replace_octet(struct str *b) {
  size_t start = random_field_start(b);
  size_t end = start;

  while (end < b->len && b->s[end] >= '0' && b->s[end] <= '9')
    end++;
  delete_at(b, start, end - start);
  insert_at(b, start, rng_below(2) ? "255" : "256");
}

static void mutate(struct str *b) {
  char one[2] = {pick(alphabet), '\0'};
  size_t pos = rng_below(b->len + 1);

  switch (rng_below(7)) {
  case 0:
    insert_at(b, pos, one);
    break;
  case 1:
    if (pos < b->len)
      delete_at(b, pos, 1);
    break;
  case 2:
    if (pos < b->len)
      b->s[pos] = one[0];
    break;
  case 3:
    insert_at(b, pos, "::");
    break;
  case 4:
    append_zone(b);
    break;
  case 5:
    insert_at(b, random_field_start(b), "0");
    break;
  default:
    replace_octet(b);
    break;
  }
}

static void gen_mutated(struct str *b) {
  size_t nv = sizeof(vectors) / sizeof(vectors[0]);
  size_t rounds = 1 + rng_below(2);

  if (rng_below(2) == 0) {
    const struct vector *seed;

    do
      seed = &vectors[rng_below(nv)];
    while (seed->want == 0); /* mutate valid addresses only */
    b->len = 0;
    append(b, seed->s);
  } else {
    gen_structured(b);
  }
  for (size_t i = 0; i < rounds; i++)
    mutate(b);
}

/* ---- Differential run against node ------------------------------------ */

struct corpus {
  struct str *items;
  size_t count;
};

static void corpus_add(struct corpus *c, const struct str *b) {
  /* One string per line, so a newline cannot be represented. */
  if (memchr(b->s, '\n', b->len) == NULL)
    c->items[c->count++] = *b;
}

static void build_corpus(struct corpus *c) {
  size_t nv = sizeof(vectors) / sizeof(vectors[0]);
  size_t cap = nv + CORPUS_RANDOM + CORPUS_STRUCTURED + CORPUS_MUTATED;
  struct str b;

  c->items = calloc(cap, sizeof(*c->items));
  c->count = 0;
  if (c->items == NULL) {
    perror("calloc");
    exit(1);
  }
  for (size_t i = 0; i < nv; i++) {
    b.len = 0;
    append(&b, vectors[i].s);
    corpus_add(c, &b);
  }
  for (size_t i = 0; i < CORPUS_RANDOM; i++) {
    gen_random(&b);
    corpus_add(c, &b);
  }
  for (size_t i = 0; i < CORPUS_STRUCTURED; i++) {
    gen_structured(&b);
    corpus_add(c, &b);
  }
  for (size_t i = 0; i < CORPUS_MUTATED; i++) {
    gen_mutated(&b);
    corpus_add(c, &b);
  }
}

/* Writes the corpus one string per line; path receives the file name. */
static bool write_corpus(const struct corpus *c, char *path, size_t size) {
  const char *dir = getenv("TMPDIR");
  FILE *f;
  int fd;

  snprintf(path, size, "%s/cnet-test-ip-XXXXXX",
           dir != NULL && *dir != '\0' ? dir : "/tmp");
  fd = mkstemp(path);
  if (fd < 0) {
    perror("mkstemp");
    return false;
  }
  f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    return false;
  }
  for (size_t i = 0; i < c->count; i++) {
    fwrite(c->items[i].s, 1, c->items[i].len, f);
    fputc('\n', f);
  }
  return fclose(f) == 0;
}

/* Appends s to cmd inside single quotes for sh, writing an embedded quote
 * as '\''.  Returns false if cmd is too small. */
static bool append_quoted(char *cmd, size_t size, const char *s) {
  size_t n = strlen(cmd);

  if (n + 3 > size)
    return false;
  cmd[n++] = '\'';
  for (; *s != '\0'; s++) {
    if (n + 6 > size)
      return false;
    if (*s == '\'') {
      memcpy(cmd + n, "'\\''", 4);
      n += 4;
    } else {
      cmd[n++] = *s;
    }
  }
  cmd[n++] = '\'';
  cmd[n] = '\0';
  return true;
}

/* Prints the node version on the first line, then one isIP digit per
 * corpus line.  No single quotes: it is passed inside '...'. */
static const char node_script[] =
    "const net=require(\"net\");"
    "const l=require(\"fs\").readFileSync(process.argv[1],\"utf8\")"
    ".split(\"\\n\");l.pop();"
    "process.stdout.write(process.version+\"\\n\"+"
    "l.map((s)=>net.isIP(s)).join(\"\"));";

static bool append_raw(char *cmd, size_t size, const char *s) {
  size_t n = strlen(cmd);

  if (n + strlen(s) + 1 > size)
    return false;
  strcpy(cmd + n, s);
  return true;
}

/* 'node' -e '<script>' '<path>' */
static bool build_command(char *cmd, size_t size, const char *path) {
  const char *node = getenv("CNET_NODE");

  if (node == NULL || *node == '\0')
    node = "node";
  cmd[0] = '\0';
  return append_quoted(cmd, size, node) && append_raw(cmd, size, " -e ") &&
         append_quoted(cmd, size, node_script) && append_raw(cmd, size, " ") &&
         append_quoted(cmd, size, path);
}

/* Runs node on the corpus file.  Returns its output (caller frees) and
 * sets *status to the pclose status, or returns NULL if it could not be
 * started at all. */
static char *run_node(const char *path, int *status) {
  char cmd[8192];
  size_t cap = 1 << 16, len = 0, n;
  char *out;
  FILE *p;

  if (!build_command(cmd, sizeof(cmd), path))
    return NULL;
  fflush(stdout);
  p = popen(cmd, "r");
  if (p == NULL)
    return NULL;
  out = malloc(cap);
  while (out != NULL && (n = fread(out + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (len + 1 == cap)
      out = realloc(out, cap *= 2);
  }
  *status = pclose(p);
  if (out == NULL) {
    perror("malloc");
    exit(1);
  }
  out[len] = '\0';
  return out;
}

/* Compares every corpus string with node's answer; one check per string
 * covering all four functions. */
static void compare(const struct corpus *c, const char *answers) {
  unsigned disagree = 0, counts[7] = {0};

  for (size_t i = 0; i < c->count; i++) {
    const struct str *b = &c->items[i];
    char z[MAX_LEN + 1];
    int want = answers[i] - '0';
    int got = cnet_is_ip_n(b->s, b->len);

    memcpy(z, b->s, b->len);
    z[b->len] = '\0';
    counts[want == 4 || want == 6 ? want : 0]++;
    if (got == want && cnet_is_ip(z) == want &&
        cnet_is_ipv4(z) == (want == 4) && cnet_is_ipv6(z) == (want == 6)) {
      passed++;
      continue;
    }
    failed++;
    if (disagree++ < MAX_DISAGREEMENTS_SHOWN) {
      printf("FAIL IP-diff: node isIP(");
      print_escaped(b->s, b->len);
      printf(") = %d, cnet_is_ip = %d, cnet_is_ipv4 = %d, "
             "cnet_is_ipv6 = %d\n",
             want, cnet_is_ip(z), cnet_is_ipv4(z), cnet_is_ipv6(z));
    }
  }
  printf("differential: %zu strings, node says 0: %u, 4: %u, 6: %u; "
         "%u disagreements\n",
         c->count, counts[0], counts[4], counts[6], disagree);
}

/* Returns true if node produced a usable answer (compared, pass or fail),
 * false if node could not be run at all. */
static bool check_against_node(const struct corpus *c, const char *path) {
  int status = 0;
  char *out = run_node(path, &status);
  char *answers;
  bool ran;

  ran = out != NULL && WIFEXITED(status) && WEXITSTATUS(status) != 126 &&
        WEXITSTATUS(status) != 127;
  if (!ran) {
    free(out);
    return false;
  }
  answers = strchr(out, '\n');
  if (WEXITSTATUS(status) != 0 || answers == NULL ||
      strlen(answers + 1) != c->count ||
      strspn(answers + 1, "046") != c->count) {
    failed++;
    printf("FAIL IP-diff: node exited with %d and gave %zu bytes, "
           "expected a version line and %zu answers\n",
           WEXITSTATUS(status), strlen(out), c->count);
  } else {
    *answers = '\0';
    printf("differential: node %s\n", out);
    compare(c, answers + 1);
  }
  free(out);
  return true;
}

/* Returns false if node could not be run. */
static bool check_differential(void) {
  struct corpus c;
  char path[4096];
  bool ran = false;

  build_corpus(&c);
  if (write_corpus(&c, path, sizeof(path))) {
    ran = check_against_node(&c, path);
    unlink(path);
  } else {
    failed++;
    printf("FAIL IP-diff: could not write the corpus file\n");
  }
  free(c.items);
  return ran;
}

int main(void) {
  bool node_ran;

  check_fixed();
  node_ran = check_differential();
  printf("%u passed, %u failed\n", passed, failed);
  if (failed > 0)
    return 1;
  if (!node_ran) {
    printf("SKIP: node not found\n");
    return SKIP_STATUS;
  }
  return 0;
}
