#!/bin/sh
# cluster.sh - an emulated cluster on this machine: N hosts, each a network
# namespace with its own hostname, joined by veth pairs to a bridge in a hub
# namespace, links limited with tc tbf; runs one mpirun across them and tears
# everything down on every exit path.
#
#   tests/cluster/cluster.sh check
#       exit 0 if this machine can host a cluster, else print why and exit 1
#   tests/cluster/cluster.sh [-r RATE] [-t SECONDS] HOSTS SLOTS -- MPIRUN-ARGS...
#       HOSTS hosts named node0..node(HOSTS-1) with SLOTS slots each (a list
#       such as 2,1 gives each host its own count); runs
#       mpirun --host node0:S0,node1:S1,... MPIRUN-ARGS inside node0,
#       killed after SECONDS (default 600).  RATE: tc tbf rate of every link
#       (default 1gbit; "none" for no limit).
#
# Facts this relies on (see DESIGN.md): Open MPI names its shared-memory
# segments after the hostname and /dev/shm is shared across network
# namespaces, so every host runs in its own UTS namespace with its own name;
# mpirun runs inside the first host, and the other hosts' daemons start
# through --mca plm_rsh_agent (this script, called as "agent HOST CMD...");
# `ip netns exec` bind-mounts /etc/netns/NS/hosts over /etc/hosts, which is
# how every host resolves the others.  Addresses: 198.18.0.0/15 only, inside
# namespaces this script creates and names with a per-run prefix.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"

why_not() {
    [ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; return; }
    for tool in ip unshare tc hostname; do
        command -v "$tool" >/dev/null 2>&1 || { echo "needs $tool"; return; }
    done
    probe="tlyprobe$$"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "cannot create a network namespace (ip netns add failed)"
        return
    fi
    ok=$(ip netns exec "$probe" unshare --uts sh -c 'hostname tlyprobe && hostname' 2>/dev/null || true)
    ip netns del "$probe" 2>/dev/null || true
    [ "$ok" = tlyprobe ] || { echo "cannot give a namespace its own hostname (unshare --uts)"; return; }
}

# --- the rsh agent: "cluster.sh agent PREFIX HOST CMD..." -------------------
# Open MPI calls plm_rsh_agent as "AGENT HOST CMD..." like ssh, so the agent
# configured below is a one-line script that adds the prefix.
if [ "${1:-}" = agent ]; then
    prefix=$2
    host=$3
    shift 3
    # Like ssh: the remaining words form one shell command.
    exec ip netns exec "$prefix$host" unshare --uts sh -c \
        'hostname "$0" && exec sh -c "$1"' "$host" "$*"
fi

if [ "${1:-}" = check ]; then
    reason=$(why_not)
    if [ -n "$reason" ]; then
        echo "$reason"
        exit 1
    fi
    exit 0
fi

rate=1gbit
limit=600
while getopts r:t: opt; do
    case $opt in
    r) rate=$OPTARG ;;
    t) limit=$OPTARG ;;
    *) echo "usage: cluster.sh [-r RATE] [-t SECONDS] HOSTS SLOTS -- MPIRUN-ARGS..." >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] && [ "$3" = -- ] || {
    echo "usage: cluster.sh [-r RATE] [-t SECONDS] HOSTS SLOTS -- MPIRUN-ARGS..." >&2
    exit 2
}
hosts=$1
slots=$2
shift 3
case $hosts in '' | *[!0-9]*) echo "cluster.sh: HOSTS must be a number" >&2; exit 2 ;; esac
[ "$hosts" -ge 1 ] && [ "$hosts" -le 32 ] || { echo "cluster.sh: 1 to 32 hosts" >&2; exit 2; }

reason=$(why_not)
if [ -n "$reason" ]; then
    echo "cluster.sh: $reason" >&2
    exit 77
fi

# A prefix unique to this run: two runs never share a namespace or a name.
prefix="tly$$x"
hub="${prefix}hub"
work=$(mktemp -d "${TMPDIR:-/tmp}/tally-cluster.XXXXXX")

teardown() {
    set +e
    i=0
    while [ "$i" -lt "$hosts" ]; do
        ip netns del "${prefix}node$i" 2>/dev/null
        rm -rf "/etc/netns/${prefix}node$i"
        i=$((i + 1))
    done
    ip netns del "$hub" 2>/dev/null
    rm -rf "$work"
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$hub"
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
ip -n "$hub" link set lo up

hostlist=
: >"$work/hosts"
printf '127.0.0.1 localhost\n' >>"$work/hosts"
i=0
while [ "$i" -lt "$hosts" ]; do
    echo "198.18.0.$((i + 10)) node$i" >>"$work/hosts"
    i=$((i + 1))
done

i=0
while [ "$i" -lt "$hosts" ]; do
    ns="${prefix}node$i"
    ip netns add "$ns"
    # Created in the hub, one end moved into the host and renamed eth0.
    ip -n "$hub" link add "v$i" type veth peer name "h$i"
    ip -n "$hub" link set "h$i" netns "$ns"
    ip -n "$ns" link set "h$i" name eth0
    ip -n "$ns" addr add "198.18.0.$((i + 10))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$hub" link set "v$i" master br0
    ip -n "$hub" link set "v$i" up
    if [ "$rate" != none ]; then
        ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 128kb latency 20ms
        ip netns exec "$hub" tc qdisc add dev "v$i" root tbf rate "$rate" burst 128kb latency 20ms
    fi
    mkdir -p "/etc/netns/$ns"
    cp "$work/hosts" "/etc/netns/$ns/hosts"
    # The i-th slot count: one for all, or one per host from a list.
    case $slots in
    *,*) s=$(echo "$slots" | cut -d, -f$((i + 1))) ;;
    *) s=$slots ;;
    esac
    [ -n "$s" ] || { echo "cluster.sh: SLOTS lists fewer than $hosts counts" >&2; exit 2; }
    hostlist="${hostlist:+$hostlist,}node$i:$s"
    i=$((i + 1))
done

printf '#!/bin/sh\nexec "%s" agent "%s" "$@"\n' "$self" "$prefix" >"$work/agent"
chmod +x "$work/agent"

if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Everything Open MPI needs to stay on the emulated network.
status=0
timeout -k 10 "$limit" ip netns exec "${prefix}node0" unshare --uts sh -c \
    'hostname node0 && exec "$@"' sh \
    "${MPIRUN:-mpirun}" --host "$hostlist" \
    --mca plm_rsh_agent "$work/agent" \
    --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 \
    "$@" || status=$?
exit "$status"
