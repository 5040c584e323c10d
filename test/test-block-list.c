/* net.BlockList (NODE-NET-BEHAVIOURS 1.23, BL-01..BL-08).
 *
 * Part 1: fixed cases, one behaviour each, with Node v20's answers (codes
 * and message text) written out.
 * Part 2: a differential run against the real node (CNET_NODE; "node" on
 * the PATH if unset). A fixed-seed generator makes a few hundred rule sets
 * -- addresses, ranges and subnets of both families, IPv4-mapped forms,
 * prefixes of every width, backwards ranges, junk -- and probes each with
 * addresses near its rules; test/node/blocklist-diff.js replays the same
 * operations on net.BlockList in one node process. Every add's outcome
 * (error code and message), every check() and every rules listing must
 * agree. CNET_BL_SEED=<n> picks another seed.
 *
 * Exit status: 0 all passed, 1 a case failed, 77 the fixed cases passed but
 * node could not be run (so nothing was compared).
 */
#define main harness_main /* wrapped below: 77 when node is missing */
#include "harness.h"
#undef main
#define NODE_DIFF_ADDRESSES /* the random address generator too */
#include "node-diff.h"

/* ---- helpers ------------------------------------------------------------ */

/* The rules as one string, newest first, separated by '|'. */
static const char *rules_of(const cnet_block_list_t *bl) {
  static char all[4096];
  size_t n = 0;

  all[0] = '\0';
  for (size_t i = 0; i < cnet_block_list_rule_count(bl); i++) {
    char rule[256];
    size_t len = cnet_block_list_rule(bl, i, rule, sizeof(rule));

    ASSERT_EQ(strlen(rule), len);
    n += (size_t)snprintf(all + n, sizeof(all) - n, "%s%s", i ? "|" : "", rule);
    ASSERT_LT(n, sizeof(all));
  }
  return all;
}

/* A failed call: its code, and cnet_last_error()'s code and message. */
#define ASSERT_FAILS(call, err_, text_)                                        \
  do {                                                                         \
    ASSERT_EQ(err_, (call));                                                   \
    ASSERT_EQ(err_, cnet_last_error()->errnum);                                \
    ASSERT_STR_EQ(cnet_err_name(err_), cnet_last_error()->code);               \
    ASSERT_STR_EQ(text_, cnet_last_error()->message);                          \
  } while (0)

static const char invalid_address[] = "Invalid socket address";

/* ---- BL-01: the four calls --------------------------------------------- */

/* The example in Node's documentation of blockList.check(). */
TEST_CASE(bl01_node_docs_example) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_NOT_NULL(bl);
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "123.123.123.123", 0));
  ASSERT_EQ(0, cnet_block_list_add_range(bl, "10.0.0.1", "10.0.0.10", 0));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "8592:757c:efae:4e45::", 64, 6));
  ASSERT(cnet_block_list_check(bl, "123.123.123.123", 0));
  ASSERT(cnet_block_list_check(bl, "10.0.0.3", 0));
  ASSERT(!cnet_block_list_check(bl, "222.111.111.222", 0));
  /* "IPv6 notation for IPv4 addresses works" */
  ASSERT(cnet_block_list_check(bl, "::ffff:7b7b:7b7b", 6));
  ASSERT(cnet_block_list_check(bl, "::ffff:123.123.123.123", 6));
  ASSERT(cnet_block_list_check(bl, "8592:757c:efae:4e45:ffff::1", 6));
  ASSERT(!cnet_block_list_check(bl, "8592:757c:efae:4e46::", 6));
  ASSERT_STR_EQ("Subnet: IPv6 8592:757c:efae:4e45::/64|"
                "Range: IPv4 10.0.0.1-10.0.0.10|"
                "Address: IPv4 123.123.123.123",
                rules_of(bl));
  cnet_block_list_free(bl);
}

TEST_CASE(bl01_empty_list_blocks_nothing) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT(!cnet_block_list_check(bl, "0.0.0.0", 4));
  ASSERT(!cnet_block_list_check(bl, "::", 6));
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  ASSERT_STR_EQ("", rules_of(bl));
  cnet_block_list_free(bl);
  cnet_block_list_free(NULL); /* like free(NULL) */
}

/* check() for a struct sockaddr, as servers and connects use it. */
TEST_CASE(bl01_check_sockaddr) {
  cnet_block_list_t *bl = cnet_block_list_new();
  struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(80)};
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
  struct sockaddr sa_unix = {.sa_family = AF_UNIX};

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "10.1.0.0", 16, 4));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "2001:db8::1", 6));
  ASSERT_EQ(1, inet_pton(AF_INET, "10.1.200.3", &in4.sin_addr));
  ASSERT(cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&in4));
  ASSERT_EQ(1, inet_pton(AF_INET, "10.2.0.0", &in4.sin_addr));
  ASSERT(!cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&in4));
  ASSERT_EQ(1, inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr));
  ASSERT(cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&in6));
  /* a dual-stack server sees an IPv4 client as ::ffff:a.b.c.d (BL-03) */
  ASSERT_EQ(1, inet_pton(AF_INET6, "::ffff:10.1.0.9", &in6.sin6_addr));
  ASSERT(cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&in6));
  ASSERT(!cnet_block_list_check_sockaddr(bl, &sa_unix));
  ASSERT(!cnet_block_list_check_sockaddr(bl, NULL));
  ASSERT(!cnet_block_list_check_sockaddr(NULL, (struct sockaddr *)&in4));
  cnet_block_list_free(bl);
}

TEST_CASE(bl01_null_arguments_are_einval) {
  cnet_block_list_t *bl = cnet_block_list_new();
  char buf[8] = "x";

  ASSERT_FAILS(cnet_block_list_add_address(NULL, "1.1.1.1", 4), UV_EINVAL,
               "invalid argument");
  ASSERT_FAILS(cnet_block_list_add_address(bl, NULL, 4), UV_EINVAL,
               "invalid argument");
  ASSERT_FAILS(cnet_block_list_add_range(bl, "1.1.1.1", NULL, 4), UV_EINVAL,
               "invalid argument");
  ASSERT_FAILS(cnet_block_list_add_subnet(bl, NULL, 8, 4), UV_EINVAL,
               "invalid argument");
  ASSERT_FAILS(cnet_block_list_add_rule(bl, NULL), UV_EINVAL,
               "invalid argument");
  ASSERT(!cnet_block_list_check(bl, NULL, 4));
  ASSERT(!cnet_block_list_check(NULL, "1.1.1.1", 4));
  ASSERT_EQ(0, cnet_block_list_rule_count(NULL));
  ASSERT_EQ(0, cnet_block_list_rule(NULL, 0, buf, sizeof(buf)));
  ASSERT_STR_EQ("", buf);
  cnet_block_list_free(bl);
}

/* ---- BL-02: the family argument ---------------------------------------- */

/* 0 is Node's default, 'ipv4'. */
TEST_CASE(bl02_family_zero_is_ipv4) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_address(bl, "1.1.1.1", 0));
  ASSERT_FAILS(cnet_block_list_add_address(bl, "::1", 0),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT(cnet_block_list_check(bl, "1.1.1.1", 0));
  ASSERT(cnet_block_list_check(bl, "1.1.1.1", 4));
  ASSERT(!cnet_block_list_check(bl, "1.1.1.1", 6)); /* not an IPv6 text */
  ASSERT_STR_EQ("Address: IPv4 1.1.1.1", rules_of(bl));
  cnet_block_list_free(bl);
}

/* A family that is neither: what new SocketAddress({ family: 5 }) throws
 * (BlockList hands the family to it); the list is unchanged. check() is
 * false, as Node's check() swallows the error. */
TEST_CASE(bl02_invalid_family) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_FAILS(cnet_block_list_add_address(bl, "1.1.1.1", 5),
               CNET_ERR_INVALID_ARG_VALUE,
               "The property 'options.family' is invalid. Received 5");
  ASSERT_FAILS(cnet_block_list_add_range(bl, "1.1.1.1", "1.1.1.2", 46),
               CNET_ERR_INVALID_ARG_VALUE,
               "The property 'options.family' is invalid. Received 46");
  ASSERT_FAILS(cnet_block_list_add_subnet(bl, "1.1.1.1", 8, -4),
               CNET_ERR_INVALID_ARG_VALUE,
               "The property 'options.family' is invalid. Received -4");
  /* the family is checked before the address, as in SocketAddress */
  ASSERT_FAILS(cnet_block_list_add_address(bl, "junk", 7),
               CNET_ERR_INVALID_ARG_VALUE,
               "The property 'options.family' is invalid. Received 7");
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "1.1.1.1", 4));
  ASSERT(!cnet_block_list_check(bl, "1.1.1.1", 5));
  cnet_block_list_free(bl);
}

/* ---- BL-03: IPv4 and IPv4-mapped IPv6 are one address ------------------- */

TEST_CASE(bl03_ipv4_mapped_matches_both_ways) {
  cnet_block_list_t *bl = cnet_block_list_new();

  /* an IPv6 rule in mapped form blocks the IPv4 address */
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "::ffff:1.1.1.2", 6));
  ASSERT(cnet_block_list_check(bl, "1.1.1.2", 4));
  ASSERT(cnet_block_list_check(bl, "::ffff:101:102", 6));
  ASSERT(!cnet_block_list_check(bl, "1.1.1.3", 4));
  /* an IPv4 range blocks the mapped IPv6 form */
  ASSERT_EQ(0, cnet_block_list_add_range(bl, "10.0.0.1", "10.0.0.10", 4));
  ASSERT(cnet_block_list_check(bl, "::ffff:0a00:0002", 6));
  ASSERT(!cnet_block_list_check(bl, "::ffff:0a00:000b", 6));
  /* ...but not the IPv4-compatible form ::a.b.c.d, which is another address */
  ASSERT(!cnet_block_list_check(bl, "::10.0.0.2", 6));
  /* an IPv4 subnet: only mapped IPv6 addresses can be in it */
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "0.0.0.0", 0, 4));
  ASSERT(cnet_block_list_check(bl, "::ffff:8.8.8.8", 6));
  ASSERT(!cnet_block_list_check(bl, "::1", 6));
  cnet_block_list_free(bl);
}

/* An IPv6 subnet that covers the mapped range holds IPv4 addresses too. */
TEST_CASE(bl03_ipv6_subnet_holds_ipv4_by_mapped_form) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "::ffff:1.2.3.4", 120, 6));
  ASSERT(cnet_block_list_check(bl, "1.2.3.200", 4));
  ASSERT(!cnet_block_list_check(bl, "1.2.4.1", 4));
  cnet_block_list_free(bl);
  bl = cnet_block_list_new();
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "::", 64, 6));
  ASSERT(cnet_block_list_check(bl, "9.9.9.9", 4)); /* ::ffff:9.9.9.9 */
  cnet_block_list_free(bl);
}

/* Node compares an IPv4 address with an IPv6 one only when the IPv6 one is
 * mapped: an IPv6 range whose ends are not both mapped holds no IPv4
 * address, although it holds that address's mapped IPv6 form. */
TEST_CASE(bl03_ipv6_range_needs_mapped_ends_for_ipv4) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_range(bl, "::", "::ffff:1.2.3.9", 6));
  ASSERT(!cnet_block_list_check(bl, "1.2.3.5", 4));
  ASSERT(cnet_block_list_check(bl, "::ffff:1.2.3.5", 6));
  ASSERT_EQ(
      0, cnet_block_list_add_range(bl, "::ffff:1.2.3.4", "::ffff:1.2.3.9", 6));
  ASSERT(cnet_block_list_check(bl, "1.2.3.5", 4));
  ASSERT(!cnet_block_list_check(bl, "1.2.3.10", 4));
  cnet_block_list_free(bl);
}

/* ---- BL-04: ranges ------------------------------------------------------ */

TEST_CASE(bl04_range_is_inclusive) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_range(bl, "10.0.0.1", "10.0.0.10", 4));
  ASSERT(!cnet_block_list_check(bl, "10.0.0.0", 4));
  ASSERT(cnet_block_list_check(bl, "10.0.0.1", 4));
  ASSERT(cnet_block_list_check(bl, "10.0.0.10", 4));
  ASSERT(!cnet_block_list_check(bl, "10.0.0.11", 4));
  /* byte order, not host order: 1.0.0.2 .. 2.0.0.1 holds 1.5.0.0 */
  ASSERT_EQ(0, cnet_block_list_add_range(bl, "1.0.0.2", "2.0.0.1", 4));
  ASSERT(cnet_block_list_check(bl, "1.5.0.0", 4));
  ASSERT(!cnet_block_list_check(bl, "1.0.0.1", 4));
  /* a one-address range */
  ASSERT_EQ(0, cnet_block_list_add_range(bl, "::7", "::7", 6));
  ASSERT(cnet_block_list_check(bl, "::7", 6));
  ASSERT(!cnet_block_list_check(bl, "::8", 6));
  cnet_block_list_free(bl);
}

TEST_CASE(bl04_range_start_after_end) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_FAILS(cnet_block_list_add_range(bl, "1.1.1.2", "1.1.1.1", 4),
               CNET_ERR_INVALID_ARG_VALUE,
               "The argument 'start' must come before end. Received "
               "SocketAddress { address: '1.1.1.2', port: 0, family: 'ipv4', "
               "flowlabel: 0 }");
  ASSERT_FAILS(cnet_block_list_add_range(bl, "::2", "::1", 6),
               CNET_ERR_INVALID_ARG_VALUE,
               "The argument 'start' must come before end. Received "
               "SocketAddress { address: '::2', port: 0, family: 'ipv6', "
               "flowlabel: 0 }");
  /* the address as SocketAddress shows it: canonical */
  ASSERT_FAILS(cnet_block_list_add_range(bl, "0::0002", "::1", 6),
               CNET_ERR_INVALID_ARG_VALUE,
               "The argument 'start' must come before end. Received "
               "SocketAddress { address: '::2', port: 0, family: 'ipv6', "
               "flowlabel: 0 }");
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  cnet_block_list_free(bl);
}

/* util.inspect gives each property its own line once the address is longer
 * than 17 characters (Node v20's output, byte for byte). */
TEST_CASE(bl04_range_error_message_breaks_long_lines) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_FAILS(cnet_block_list_add_range(bl, "1:2:3:4:5:6:7:888", "::", 6),
               CNET_ERR_INVALID_ARG_VALUE,
               "The argument 'start' must come before end. Received "
               "SocketAddress { address: '1:2:3:4:5:6:7:888', port: 0, "
               "family: 'ipv6', flowlabel: 0 }");
  ASSERT_FAILS(cnet_block_list_add_range(bl, "1111:2:3:4:5:6:7:8", "::", 6),
               CNET_ERR_INVALID_ARG_VALUE,
               "The argument 'start' must come before end. Received "
               "SocketAddress {\n  address: '1111:2:3:4:5:6:7:8',\n  port: "
               "0,\n  family: 'ipv6',\n  flowlabel: 0\n}");
  cnet_block_list_free(bl);
}

/* Each end is read before the order is checked: a bad end is a bad
 * address, whatever the start. */
TEST_CASE(bl04_range_bad_end_address) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_FAILS(cnet_block_list_add_range(bl, "9.9.9.9", "1.1.1", 4),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT_FAILS(cnet_block_list_add_range(bl, "::1", "1.1.1.1", 6),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  cnet_block_list_free(bl);
}

/* ---- BL-05: subnets ----------------------------------------------------- */

TEST_CASE(bl05_prefix_out_of_range) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_FAILS(cnet_block_list_add_subnet(bl, "1.1.1.1", 33, 4),
               CNET_ERR_OUT_OF_RANGE,
               "The value of \"prefix\" is out of range. It must be >= 0 && "
               "<= 32. Received 33");
  ASSERT_FAILS(cnet_block_list_add_subnet(bl, "1.1.1.1", -1, 0),
               CNET_ERR_OUT_OF_RANGE,
               "The value of \"prefix\" is out of range. It must be >= 0 && "
               "<= 32. Received -1");
  ASSERT_FAILS(cnet_block_list_add_subnet(bl, "::1", 129, 6),
               CNET_ERR_OUT_OF_RANGE,
               "The value of \"prefix\" is out of range. It must be >= 0 && "
               "<= 128. Received 129");
  /* the network is read first */
  ASSERT_FAILS(cnet_block_list_add_subnet(bl, "1.1.1.x", -1, 4),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "::ffff:1.1.1.1", 128, 6));
  cnet_block_list_free(bl);
}

/* Prefixes that do not fall on a byte are exact to the bit. */
TEST_CASE(bl05_prefix_not_byte_aligned_is_exact) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "192.168.1.64", 27, 4));
  ASSERT(!cnet_block_list_check(bl, "192.168.1.63", 4));
  ASSERT(cnet_block_list_check(bl, "192.168.1.64", 4));
  ASSERT(cnet_block_list_check(bl, "192.168.1.95", 4));
  ASSERT(!cnet_block_list_check(bl, "192.168.1.96", 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "2001:db8:0:2000::", 51, 6));
  ASSERT(!cnet_block_list_check(bl, "2001:db8:0:1fff:ffff::", 6));
  ASSERT(cnet_block_list_check(bl, "2001:db8:0:2000::", 6));
  ASSERT(cnet_block_list_check(bl, "2001:db8:0:3fff:ffff::", 6));
  ASSERT(!cnet_block_list_check(bl, "2001:db8:0:4000::", 6));
  /* the network's own host bits do not matter */
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "172.16.99.99", 12, 4));
  ASSERT(cnet_block_list_check(bl, "172.31.0.0", 4));
  ASSERT(!cnet_block_list_check(bl, "172.32.0.0", 4));
  ASSERT_STR_EQ("Subnet: IPv4 172.16.99.99/12|"
                "Subnet: IPv6 2001:db8:0:2000::/51|"
                "Subnet: IPv4 192.168.1.64/27",
                rules_of(bl));
  cnet_block_list_free(bl);
}

TEST_CASE(bl05_prefix_edges) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "1.2.3.4", 32, 4));
  ASSERT(cnet_block_list_check(bl, "1.2.3.4", 4));
  ASSERT(!cnet_block_list_check(bl, "1.2.3.5", 4));
  ASSERT(cnet_block_list_check(bl, "::ffff:1.2.3.4", 6));
  cnet_block_list_free(bl);
  bl = cnet_block_list_new();
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "1.2.3.4", 0, 4));
  ASSERT(cnet_block_list_check(bl, "200.1.1.1", 4));
  ASSERT(!cnet_block_list_check(bl, "::1", 6));
  cnet_block_list_free(bl);
  bl = cnet_block_list_new();
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "ffff::", 0, 6));
  ASSERT(cnet_block_list_check(bl, "::1", 6));
  ASSERT(cnet_block_list_check(bl, "1.1.1.1", 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "::5", 128, 6));
  cnet_block_list_free(bl);
}

/* ---- BL-06: rules ------------------------------------------------------- */

TEST_CASE(bl06_rules_newest_first_in_node_format) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_address(bl, "1.1.1.1", 4));
  ASSERT_EQ(0, cnet_block_list_add_range(bl, "10.0.0.1", "10.0.0.10", 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "8592:757c:efae:4e45::", 64, 6));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "1.1.1.1", 4)); /* again */
  ASSERT_EQ(4, cnet_block_list_rule_count(bl));
  ASSERT_STR_EQ("Address: IPv4 1.1.1.1|"
                "Subnet: IPv6 8592:757c:efae:4e45::/64|"
                "Range: IPv4 10.0.0.1-10.0.0.10|"
                "Address: IPv4 1.1.1.1",
                rules_of(bl));
  cnet_block_list_free(bl);
}

/* The address as SocketAddress prints it (inet_ntop), in the family the
 * rule was added in: an IPv6 rule for a mapped address stays IPv6. */
TEST_CASE(bl06_rules_show_canonical_text) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_address(bl, "::ffff:102:304", 6));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "1.2.3.4", 4));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "0000:0::01", 6));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "fe80::1%eth0", 6));
  ASSERT_EQ(0,
            cnet_block_list_add_range(bl, "::ffff:1.2.3.4", "::1:0:0:0:0", 6));
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "::2:3", 6));
  ASSERT_STR_EQ("Address: IPv6 ::0.2.0.3|"
                "Range: IPv6 ::ffff:1.2.3.4-0:0:0:1::|"
                "Address: IPv6 fe80::1|"
                "Address: IPv6 ::1|"
                "Address: IPv4 1.2.3.4|"
                "Address: IPv6 ::ffff:1.2.3.4",
                rules_of(bl));
  cnet_block_list_free(bl);
}

/* rule() fills the buffer like snprintf. */
TEST_CASE(bl06_rule_buffer_like_snprintf) {
  cnet_block_list_t *bl = cnet_block_list_new();
  char buf[8];

  ASSERT_EQ(0, cnet_block_list_add_address(bl, "1.1.1.1", 4));
  ASSERT_EQ(strlen("Address: IPv4 1.1.1.1"),
            cnet_block_list_rule(bl, 0, buf, sizeof(buf)));
  ASSERT_STR_EQ("Address", buf);
  ASSERT_EQ(21, cnet_block_list_rule(bl, 0, NULL, 0));
  memcpy(buf, "junk", 5);
  ASSERT_EQ(0, cnet_block_list_rule(bl, 1, buf, sizeof(buf)));
  ASSERT_STR_EQ("", buf);
  cnet_block_list_free(bl);
}

/* ---- BL-07: bad addresses ----------------------------------------------- */

TEST_CASE(bl07_check_of_non_address_is_false) {
  cnet_block_list_t *bl = cnet_block_list_new();
  static const char *const junk[] = {"",         "1.1.1",        "1.1.1.1.1",
                                     "01.1.1.1", "256.1.1.1",    " 1.1.1.1",
                                     "1.1.1.1 ", "1.1.1.1%eth0", "localhost",
                                     "::1::",    "[::1]",        "1::2::3"};

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "0.0.0.0", 0, 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "::", 0, 6));
  for (size_t i = 0; i < ARRAY_LEN(junk); i++) {
    ASSERT(!cnet_block_list_check(bl, junk[i], 4));
    ASSERT(!cnet_block_list_check(bl, junk[i], 6));
  }
  /* a zone is read and dropped, as uv_ip6_addr() does */
  ASSERT(cnet_block_list_check(bl, "fe80::1%eth0", 6));
  cnet_block_list_free(bl);
}

TEST_CASE(bl07_add_of_non_address_is_invalid_address) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_FAILS(cnet_block_list_add_address(bl, "1.1.1.x", 4),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT_FAILS(cnet_block_list_add_address(bl, "::1", 4),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT_FAILS(cnet_block_list_add_address(bl, "1.1.1.1", 6),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT_FAILS(cnet_block_list_add_range(bl, "x", "1.1.1.1", 4),
               CNET_ERR_INVALID_ADDRESS, invalid_address);
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  cnet_block_list_free(bl);
}

/* ---- BL-08: a rule's text back into a list ------------------------------ */

/* Every text rule() prints adds the same rule again (fromJSON's round
 * trip); the copy blocks exactly what the original blocks. */
TEST_CASE(bl08_add_rule_round_trips_rules) {
  static const char *const probes[] = {"10.0.0.0",
                                       "10.0.0.5",
                                       "10.0.0.11",
                                       "::ffff:10.0.0.5",
                                       "1.1.1.1",
                                       "192.168.9.9",
                                       "8592:757c:efae:4e45::1",
                                       "::1",
                                       "::ffff:1.2.3.4"};
  cnet_block_list_t *a = cnet_block_list_new(), *b = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_address(a, "1.1.1.1", 4));
  ASSERT_EQ(0, cnet_block_list_add_address(a, "::ffff:1.2.3.4", 6));
  ASSERT_EQ(0, cnet_block_list_add_range(a, "10.0.0.1", "10.0.0.10", 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(a, "192.168.0.0", 17, 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(a, "8592:757c:efae:4e45::", 64, 6));
  ASSERT_EQ(0, cnet_block_list_add_range(a, "::", "::1", 6));
  /* oldest first, so that b lists them in a's order */
  for (size_t i = cnet_block_list_rule_count(a); i-- > 0;) {
    char rule[128];

    cnet_block_list_rule(a, i, rule, sizeof(rule));
    ASSERT_EQ(0, cnet_block_list_add_rule(b, rule));
  }
  ASSERT_STR_EQ(rules_of(a), rules_of(b));
  for (size_t i = 0; i < ARRAY_LEN(probes); i++) {
    for (int family = 4; family <= 6; family += 2)
      ASSERT_EQ(cnet_block_list_check(a, probes[i], family),
                cnet_block_list_check(b, probes[i], family));
  }
  cnet_block_list_free(a);
  cnet_block_list_free(b);
}

/* Any address text the add calls take is fine inside a rule. */
TEST_CASE(bl08_add_rule_reads_any_address_text) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_EQ(0, cnet_block_list_add_rule(bl, "Address: IPv6 0::0001"));
  ASSERT_EQ(0, cnet_block_list_add_rule(bl, "Range: IPv6 ::a-::FF"));
  ASSERT_EQ(0, cnet_block_list_add_rule(bl, "Subnet: IPv4 10.0.0.0/008"));
  ASSERT_STR_EQ("Subnet: IPv4 10.0.0.0/8|Range: IPv6 ::a-::ff|"
                "Address: IPv6 ::1",
                rules_of(bl));
  cnet_block_list_free(bl);
}

/* Anything else is ERR_INVALID_ARG_VALUE, quoting the text the way
 * util.inspect shows a string; the list is unchanged. */
TEST_CASE(bl08_add_rule_rejects_what_is_not_a_rule) {
  static const char *const bad[] = {
      "",
      "Address: IPv4",
      "Address: IPv4 ",
      "Address: ipv4 1.1.1.1",
      "address: IPv4 1.1.1.1",
      "Address:  IPv4 1.1.1.1",
      "Address: IPv5 1.1.1.1",
      "Address: IPv4 1.1.1.1 ",
      "Address: IPv4 ::1",
      "Address: IPv6 1.1.1.1",
      "Range: IPv4 1.1.1.1",
      "Range: IPv4 1.1.1.1-",
      "Range: IPv4 1.1.1.2-1.1.1.1",
      "Range: IPv4 1.1.1.1-1.1.1.2-1.1.1.3",
      "Subnet: IPv4 1.1.1.1",
      "Subnet: IPv4 1.1.1.1/",
      "Subnet: IPv4 1.1.1.1/33",
      "Subnet: IPv4 1.1.1.1/-1",
      "Subnet: IPv4 1.1.1.1/8/8",
      "Subnet: IPv6 ::/0129",
      "Subnet: IPv4 1.1.1.1/ 8",
      "Host: IPv4 1.1.1.1",
  };
  cnet_block_list_t *bl = cnet_block_list_new();

  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    char message[256];

    snprintf(message, sizeof(message),
             "The argument 'rule' is invalid. Received '%s'", bad[i]);
    ASSERT_FAILS(cnet_block_list_add_rule(bl, bad[i]),
                 CNET_ERR_INVALID_ARG_VALUE, message);
  }
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  cnet_block_list_free(bl);
}

/* The quoting of the text in that message is util.inspect's (these are
 * Node v20's renderings of the same strings). */
TEST_CASE(bl08_add_rule_message_quotes_like_inspect) {
  static const struct {
    const char *rule, *received;
  } cases[] = {
      {"it's", "\"it's\""},
      {"it's \"q\"", "`it's \"q\"`"},
      {"it's \"q\" `b`", "'it\\'s \"q\" `b`'"},
      {"tab\there\x01\x7f\xc2\x85\xc3\xa9\\",
       "'tab\\there\\x01\\x7F\\x85\xc3\xa9\\\\'"},
      {"a\nb", "'a\\nb'"},
      {"xxxxxxxxxxxxxxxxxxxx\n"
       "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
       "'xxxxxxxxxxxxxxxxxxxx\\n' +\n  "
       "'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
       "'"},
  };
  cnet_block_list_t *bl = cnet_block_list_new();
  char long_rule[200], message[512];

  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    snprintf(message, sizeof(message),
             "The argument 'rule' is invalid. Received %s", cases[i].received);
    ASSERT_FAILS(cnet_block_list_add_rule(bl, cases[i].rule),
                 CNET_ERR_INVALID_ARG_VALUE, message);
  }
  /* past 128 characters the inspected text is cut, and "..." added */
  memset(long_rule, 'x', 130);
  long_rule[130] = '\0';
  snprintf(message, sizeof(message),
           "The argument 'rule' is invalid. Received '%.127s...", long_rule);
  ASSERT_FAILS(cnet_block_list_add_rule(bl, long_rule),
               CNET_ERR_INVALID_ARG_VALUE, message);
  cnet_block_list_free(bl);
}

/* ---- sharing between threads -------------------------------------------- */

typedef struct {
  cnet_block_list_t *bl;
  int id;
  unsigned hits;
} worker_t;

static void worker_run(void *arg) {
  worker_t *w = arg;

  for (int i = 0; i < 2000; i++) {
    char addr[32];

    snprintf(addr, sizeof(addr), "10.%d.%d.%d", w->id, i / 250, i % 250);
    if (i % 4 == 0)
      ASSERT_EQ(0, cnet_block_list_add_address(w->bl, addr, 4));
    w->hits += cnet_block_list_check(w->bl, addr, 4);
    w->hits += cnet_block_list_rule_count(w->bl) > 0 ? 0 : 1000000;
  }
}

/* Adds and checks from several threads at once: every add lands, and an
 * address added before its own check is always seen (run under ASan in the
 * sanitizer build, which also catches a torn reallocation). */
TEST_CASE(bl_shared_between_threads) {
  cnet_block_list_t *bl = cnet_block_list_new();
  uv_thread_t threads[4];
  worker_t workers[4];

  ASSERT_EQ(0, cnet_block_list_add_address(bl, "192.0.2.1", 4));
  for (int i = 0; i < 4; i++) {
    workers[i] = (worker_t){bl, i, 0};
    ASSERT_EQ(0, uv_thread_create(&threads[i], worker_run, &workers[i]));
  }
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(0, uv_thread_join(&threads[i]));
    ASSERT_EQ(500, workers[i].hits);
  }
  ASSERT_EQ(1 + 4 * 500, cnet_block_list_rule_count(bl));
  cnet_block_list_free(bl);
}

/* ---- Part 2: differential run against node ------------------------------- */

#define DIFF_SETS 400
#define DIFF_SHOWN 10

/* The outcome of an add, as blocklist-diff.js prints it. */
static void text_outcome(text_t *t, int err, size_t *errors) {
  *errors += err != 0;
  if (err == 0) {
    text_add(t, "ok\n");
    return;
  }
  text_add(t, "!%s ", cnet_err_name(err));
  text_json(t, cnet_last_error()->message);
  text_add(t, "\n");
}

/* ---- running the same operations on both sides ---- */

typedef struct {
  text_t ops, mine;
  cnet_block_list_t *bl;
  size_t count;
  size_t adds, add_errors, checks, hits; /* to show what was covered */
} diff_t;

static void op_new(diff_t *d) {
  cnet_block_list_free(d->bl);
  d->bl = cnet_block_list_new();
  ASSERT_NOT_NULL(d->bl);
  text_add(&d->ops, "[\"new\"]\n");
  text_add(&d->mine, "ok\n");
  d->count++;
}

static void op_address(diff_t *d, int fam, const char *a) {
  text_add(&d->ops, "[\"addr\",%d,", fam);
  text_json(&d->ops, a);
  text_add(&d->ops, "]\n");
  text_outcome(&d->mine, cnet_block_list_add_address(d->bl, a, fam),
               &d->add_errors);
  d->adds++;
  d->count++;
}

static void op_range(diff_t *d, int fam, const char *a, const char *b) {
  text_add(&d->ops, "[\"range\",%d,", fam);
  text_json(&d->ops, a);
  text_add(&d->ops, ",");
  text_json(&d->ops, b);
  text_add(&d->ops, "]\n");
  text_outcome(&d->mine, cnet_block_list_add_range(d->bl, a, b, fam),
               &d->add_errors);
  d->adds++;
  d->count++;
}

static void op_subnet(diff_t *d, int fam, const char *a, int prefix) {
  text_add(&d->ops, "[\"subnet\",%d,", fam);
  text_json(&d->ops, a);
  text_add(&d->ops, ",%d]\n", prefix);
  text_outcome(&d->mine, cnet_block_list_add_subnet(d->bl, a, prefix, fam),
               &d->add_errors);
  d->adds++;
  d->count++;
}

static void op_check(diff_t *d, int fam, const char *a) {
  text_add(&d->ops, "[\"check\",%d,", fam);
  text_json(&d->ops, a);
  text_add(&d->ops, "]\n");
  bool hit = cnet_block_list_check(d->bl, a, fam);

  text_add(&d->mine, "%s\n", hit ? "true" : "false");
  d->hits += hit;
  d->checks++;
  d->count++;
}

static void op_rules(diff_t *d) {
  text_add(&d->ops, "[\"rules\"]\n");
  text_add(&d->mine, "[");
  for (size_t i = 0; i < cnet_block_list_rule_count(d->bl); i++) {
    char rule[256];

    cnet_block_list_rule(d->bl, i, rule, sizeof(rule));
    text_add(&d->mine, i != 0 ? "," : "");
    text_json(&d->mine, rule);
  }
  text_add(&d->mine, "]\n");
  d->count++;
}

/* A prefix for a network of family fam: the edges, byte multiples, any
 * width; now and then out of range. */
static int random_prefix(int fam) {
  int max = fam == 6 ? 128 : 32;

  switch (below(10)) {
  case 0:
    return 0;
  case 1:
    return max;
  case 2:
    return (int)below((uint32_t)max / 8 + 1) * 8;
  case 3: {
    static const int wild[] = {-1, 33, 129, 1000, -2147483647 - 1};

    return wild[below(ARRAY_LEN(wild))];
  }
  default:
    return fam == 6 && below(2) == 0 ? 96 + (int)below(33)
                                     : (int)below((uint32_t)max + 1);
  }
}

static void add_random_rule(diff_t *d, const ip16_t *bases, int nbases,
                            ip16_t *seen, int *nseen) {
  ip16_t a = near(bases[below((uint32_t)nbases)]);
  char ta[80], tb[80];
  int fam = spell(&a, ta, sizeof(ta), true);

  seen[(*nseen)++] = a;
  switch (below(3)) {
  case 0:
    op_address(d, fam, ta);
    break;
  case 1: {
    /* the end spelled in the start's family, usually after it */
    ip16_t b = near(a);

    if (below(4) != 0 && memcmp(b.b, a.b, 16) < 0) {
      ip16_t t = a;

      a = b;
      b = t;
    }
    seen[(*nseen)++] = b;
    if (fam == 6 || !ip_is_v4(&a) || !ip_is_v4(&b)) {
      text_v6(&a, ta, sizeof(ta));
      text_v6(&b, tb, sizeof(tb));
      fam = 6;
    } else {
      text_v4(a.b + 12, ta, sizeof(ta));
      text_v4(b.b + 12, tb, sizeof(tb));
    }
    if (below(25) == 0)
      mutate(below(2) ? ta : tb, sizeof(ta));
    op_range(d, fam, ta, tb);
    break;
  }
  default:
    op_subnet(d, fam, ta, random_prefix(fam == 6 ? 6 : 4));
    break;
  }
}

static void add_random_probe(diff_t *d, const ip16_t *seen, int nseen) {
  ip16_t p = below(8) == 0 ? random_base() : near(seen[below((uint32_t)nseen)]);
  char t[80];
  int fam = spell(&p, t, sizeof(t), true);

  if (below(40) == 0)
    fam = 5; /* check() is false for it, in both */
  op_check(d, fam, t);
}

/* One rule set: a few bases, rules near them, probes near the rules. */
static void random_set(diff_t *d) {
  ip16_t bases[5], seen[40];
  int nbases = 1 + (int)below(5), nseen = 0, nrules = 1 + (int)below(8);

  for (int i = 0; i < nbases; i++)
    bases[i] = random_base();
  op_new(d);
  for (int i = 0; i < nrules; i++)
    add_random_rule(d, bases, nbases, seen, &nseen);
  for (int i = 0, n = 10 + (int)below(30); i < n; i++)
    add_random_probe(d, seen, nseen);
  op_rules(d);
}

/* Replays d->ops in node and compares its answers with d->mine, line for
 * line. Prints the first disagreements and a summary. */
static void compare_with_node(diff_t *d, const char *what) {
  text_t theirs = node_replay("blocklist-diff.js", &d->ops, NULL);
  size_t bad = node_diff_lines(what, "operation", &d->ops, &d->mine, &theirs,
                               d->count, DIFF_SHOWN);

  printf("differential %s: %zu operations (%zu adds, %zu of them errors; "
         "%zu checks, %zu true), %zu disagreements (node %.*s)\n",
         what, d->count, d->adds, d->add_errors, d->checks, d->hits, bad,
         (int)strcspn(theirs.s, "\n"), theirs.s);
  text_free(&theirs);
  ASSERT_EQ(0, bad);
}

static void diff_free(diff_t *d) {
  cnet_block_list_free(d->bl);
  free(d->ops.s);
  free(d->mine.s);
}

/* BL-01..BL-07 over DIFF_SETS random rule sets. */
TEST_CASE(diff_block_list_against_node) {
  diff_t d = {0};

  if (node_missing())
    return;
  rng_state = seed("CNET_BL_SEED", 0xb10c5);
  for (int i = 0; i < DIFF_SETS; i++)
    random_set(&d);
  compare_with_node(&d, "BlockList");
  diff_free(&d);
}

/* The texts of the fixed cases above, checked against node as well, so the
 * answers written out there are Node's and not only cnet's. */
TEST_CASE(diff_fixed_corners_against_node) {
  static const char *const v6[] = {"::",
                                   "::1",
                                   "::2:3",
                                   "::ffff:1.2.3.4",
                                   "::ffff:102:304",
                                   "::1.2.3.4",
                                   "0:0:0:1::",
                                   "fe80::1%eth0",
                                   "1111:2:3:4:5:6:7:8",
                                   "1:2:3:4:5:6:7:888",
                                   "0000:0000:0000:0000:0000:0000:0000:00011%x",
                                   "::ffff:0:0",
                                   "ffff::"};
  diff_t d = {0};

  if (node_missing())
    return;
  op_new(&d);
  for (size_t i = 0; i < ARRAY_LEN(v6); i++) {
    op_address(&d, 6, v6[i]);
    op_range(&d, 6, v6[i], "::");
    op_range(&d, 6, "::", v6[i]);
    op_subnet(&d, 6, v6[i], (int)(i * 11 % 129));
  }
  op_subnet(&d, 4, "1.2.3.4", 0);
  op_subnet(&d, 4, "1.2.3.4", 32);
  op_range(&d, 4, "1.0.0.2", "2.0.0.1");
  op_range(&d, 4, "255.255.255.255", "0.0.0.0");
  op_rules(&d);
  for (size_t i = 0; i < ARRAY_LEN(v6); i++)
    op_check(&d, 6, v6[i]);
  op_check(&d, 4, "1.5.0.0");
  op_check(&d, 4, "1.2.3.5");
  op_new(&d);
  op_range(&d, 6, "::", "::ffff:1.2.3.9");
  op_subnet(&d, 6, "::ffff:1.2.3.4", 120);
  op_check(&d, 4, "1.2.3.5");
  op_check(&d, 4, "1.2.4.5");
  op_check(&d, 6, "::ffff:1.2.3.5");
  op_rules(&d);
  compare_with_node(&d, "corners");
  diff_free(&d);
}

/* harness.h's main, then 77 if all passed but node could not be run. */
int main(int argc, char **argv) {
  return node_diff_main(argc, argv, harness_main);
}
