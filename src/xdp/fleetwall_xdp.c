// SPDX-License-Identifier: GPL-3.0-or-later
// Copyright (c) 2026, fleetwall.blocklist contributors
//
// fleetwall.blocklist's XDP program: drop every packet whose source address the blocklist holds, before the
// kernel's network stack sees it.
//
// The lists are LPM tries, one per family, so a /32 and a /8 match alike. Each is reached through a one-slot
// ARRAY_OF_MAPS: a full reload fills a new trie and switches the slot in one map update, so a packet sees the
// old generation or the new one, never a half-filled trie. A per-CPU counter per family keeps the drops and
// their bytes for the metrics.
//
// Parsed: Ethernet, up to two VLAN tags (802.1Q, 802.1ad), IPv4 and IPv6. Only the fixed IPv6 header is read:
// the source address is in it, so no extension header needs walking. Anything else passes.
//
// The maps are created, filled and pinned by the collection's Python (host/xdp.py), which loads this object
// itself: the definitions below give the names it binds and the layout both sides agree on.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct drops {
	__u64 packets;
	__u64 bytes;
};

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct v4_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct v4_key);
	__type(value, __u8);
};

struct v6_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct v6_key);
	__type(value, __u8);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct v4_trie);
} fleetwall_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct v6_trie);
} fleetwall_v6 SEC(".maps");

// Index 0: IPv4, 1: IPv6.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct drops);
} fleetwall_drops SEC(".maps");

static __always_inline int listed(void *outer, void *key)
{
	__u32 slot = 0;
	void *trie = bpf_map_lookup_elem(outer, &slot);

	return trie && bpf_map_lookup_elem(trie, key);
}

static __always_inline int dropped(struct xdp_md *ctx, __u32 family)
{
	struct drops *count = bpf_map_lookup_elem(&fleetwall_drops, &family);

	if (count) {
		count->packets += 1;
		count->bytes += ctx->data_end - ctx->data;
	}
	return XDP_DROP;
}

SEC("xdp")
int fleetwall_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor = eth + 1;
	__be16 proto;

	if (cursor > end)
		return XDP_PASS;
	proto = eth->h_proto;
#pragma unroll
	for (int tag = 0; tag < 2; tag++) {
		struct vlan_tag *vlan = cursor;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > end)
			return XDP_PASS;
		proto = vlan->proto;
		cursor = vlan + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;
		struct v4_key key = { .prefixlen = 32 };

		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		__builtin_memcpy(key.addr, &ip->saddr, sizeof(key.addr));
		if (listed(&fleetwall_v4, &key))
			return dropped(ctx, 0);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;
		struct v6_key key = { .prefixlen = 128 };

		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
		if (listed(&fleetwall_v6, &key))
			return dropped(ctx, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
