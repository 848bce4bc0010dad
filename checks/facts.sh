# mlplat host facts probe. Read-only: it only reads files and runs query commands.
# Prints one "key=value" line per fact; values never contain newlines. Runs under `sh` (POSIX).
os_release=/etc/os-release
[ -r "$os_release" ] || os_release=/usr/lib/os-release
field() { sed -n "s/^$1=//p" "$os_release" 2>/dev/null | head -n 1 | tr -d '"'; }
echo "hostname=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
echo "os.id=$(field ID)"
echo "os.version=$(field VERSION_ID)"
echo "os.pretty=$(field PRETTY_NAME)"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
echo "memory.kib=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "swap.kib=$(sed -n 's/^SwapTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "machine_id=$(cat /etc/machine-id 2>/dev/null)"
echo "product_uuid=$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"
echo "addresses=$(ip -o addr show scope global 2>/dev/null | awk '{print $2"="$4}' | tr '\n' ' ')"
echo "time.epoch=$(date -u +%s)"
