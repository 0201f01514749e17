#!/usr/bin/env bash
# bench/compare.sh: `regkit serve` and the reference registry (Debian's docker-registry,
# distribution 2.8) side by side, in one run, on this machine, with the same config.yml, the
# same TLS certificate, the same htpasswd files and the same disk. For each mode (plain HTTP,
# TLS, TLS + htpasswd bcrypt cost 5, TLS + htpasswd bcrypt cost 10) it starts each server in
# turn on 127.0.0.1, runs `regkit bench --json --server-pid PID` against it (the server's CPU
# seconds per workload and its memory come from /proc), then measures peak RSS under 16
# concurrent 256 MiB pushes and `_catalog?n=100` latency with many repositories, and the
# machine's own limits (openssl speed, a 1 GiB write with fdatasync). Writes BENCHMARKS.md.
#
# Usage: bench/compare.sh [options]
#   --only reference|regkit|both   servers to run (default both; `reference` works without
#                                  `regkit serve`)
#   --modes LIST       comma-separated subset of plain,tls,tls-htpasswd5,tls-htpasswd10
#   --size SIZE        blob size for push/pull (default 1GiB)
#   --chunk SIZE       chunk size of the chunked push (default 16MiB)
#   --concurrency N    connections for manifest HEAD/GET (default 16)
#   --duration D       length of each rate/latency workload (default 10s)
#   --runs N           runs of the standard workloads per mode, the two servers taking
#                      turns (a fresh server each run), so a host whose speed drifts
#                      during the run favours neither; figures are medians (default 1)
#   --parallel N       concurrent pushes of the peak-RSS workload (default 16)
#   --parallel-size S  size of each of those pushes (default 256MiB)
#   --repos N          repositories created for the catalog workload (default 2000), once,
#                      through regkit serve when it runs; both servers then list that root
#   --speed-seconds N  seconds per block size for `openssl speed` (default 3)
#   --dd-mib N         size of the fdatasync write test in MiB (default 1024)
#   --out FILE         where to write the results (default BENCHMARKS.md in the repo)
#   --keep             keep the work directory (certificates, configs, data, JSON, logs)
# Environment:
#   REGKIT_BIN   regkit binary to use instead of building `cargo build --release`
#   CERT_TOOL    openssl (default) or regkit: which tool makes the CA and site certificate
#   BENCH_TMPDIR parent of the work directory (default /var/tmp); both servers' data go there
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
only=both modes=plain,tls,tls-htpasswd5,tls-htpasswd10
size=1GiB chunk=16MiB concurrency=16 duration=10s runs=1
parallel=16 parallel_size=256MiB repos=2000 speed_seconds=3 dd_mib=1024
out="$root/BENCHMARKS.md" keep=0
CERT_TOOL=${CERT_TOOL:-openssl}

die() { echo "compare.sh: error: $*" >&2; exit 2; }
say() { echo "compare.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --chunk) chunk=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --parallel-size) parallel_size=$2; shift 2 ;;
    --repos) repos=$2; shift 2 ;;
    --speed-seconds) speed_seconds=$2; shift 2 ;;
    --dd-mib) dd_mib=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$only" in
  reference) servers=(reference) ;;
  regkit) servers=(regkit) ;;
  both) servers=(reference regkit) ;;
  *) die "--only takes reference, regkit or both, not '$only'" ;;
esac
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case "$m" in plain|tls|tls-htpasswd5|tls-htpasswd10) ;; *) die "unknown mode '$m'" ;; esac
done
for n in "$repos" "$parallel" "$runs" "$concurrency" "$speed_seconds" "$dd_mib"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "'$n' is not a whole number"
done
for tool in openssl htpasswd curl jq dd; do
  command -v "$tool" >/dev/null || die "$tool is not installed (tests/run.sh installs it)"
done
if [[ " ${servers[*]} " == *" reference "* ]]; then
  command -v docker-registry >/dev/null || die "docker-registry is not installed (apt-get install docker-registry)"
fi

# --- the regkit binary -------------------------------------------------------------------
if [ -n "${REGKIT_BIN:-}" ]; then
  regkit=$REGKIT_BIN
else
  say "building the release binary"
  (cd "$root" && cargo build --release --quiet)
  regkit="$root/target/release/regkit"
fi
[ -x "$regkit" ] || die "no regkit binary at $regkit"
if [[ " ${servers[*]} " == *" regkit "* ]]; then
  "$regkit" serve --help >/dev/null 2>&1 \
    || die "this regkit has no 'serve' command yet: run with --only reference"
fi

# --- work directory, cleaned up on exit (servers included) -------------------------------
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/regkit-compare.XXXXXX")
server_pid=""
finish() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "$keep" = 1 ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap finish EXIT
mkdir -p "$work/pki" "$work/results"

# --- one CA + one site certificate for 127.0.0.1, shared by both servers ------------------
make_certs_openssl() {
  local d=$work/pki ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -days 7 -subj "/CN=regkit compare CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout "$d/site.key" -out "$d/site.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -days 7 -in "$d/site.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -extfile "$d/ext.cnf" -out "$d/site.crt" 2>/dev/null
}
make_certs_regkit() {
  "$regkit" certs site --help >/dev/null 2>&1 \
    || die "this regkit has no 'certs site' command yet: use CERT_TOOL=openssl"
  "$regkit" certs ca --out "$work/pki"
  "$regkit" certs site --ca-cert "$work/pki/ca.crt" --ca-key "$work/pki/ca.key" \
    --san 127.0.0.1 --san ::1 --san localhost --out "$work/pki"
}
case "$CERT_TOOL" in
  openssl) make_certs_openssl ;;
  regkit) make_certs_regkit ;;
  *) die "CERT_TOOL must be openssl or regkit" ;;
esac
ca=$work/pki/ca.crt

# --- one htpasswd file per bcrypt cost (Apache's htpasswd, as users make them) ------------
password=$(openssl rand -hex 12)
for cost in 5 10; do
  htpasswd -Bbn -C "$cost" bench "$password" >"$work/htpasswd$cost"
done

# --- servers ------------------------------------------------------------------------------
port=$((20000 + RANDOM % 20000))

# write_config MODE DATADIR: one config.yml in the reference registry's schema, read by both.
write_config() {
  local mode=$1 data=$2 file=$work/$1.yml
  {
    printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n' "$data"
    printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
    case "$mode" in
      tls*) printf '  tls:\n    certificate: %s\n    key: %s\n' "$work/pki/site.crt" "$work/pki/site.key" ;;
    esac
    case "$mode" in
      tls-htpasswd*) printf 'auth:\n  htpasswd:\n    realm: bench\n    path: %s\n' "$work/htpasswd${mode#tls-htpasswd}" ;;
    esac
  } >"$file"
  echo "$file"
}

url_for() { case "$1" in plain) echo "http://127.0.0.1:$port" ;; *) echo "https://127.0.0.1:$port" ;; esac; }

# start_server SERVER MODE [DATADIR]: starts it on DATADIR (default a fresh one), waits until
# /v2/ answers. server_data names the directory, so stop_server can remove a fresh one.
server_data=""
start_server() {
  local server=$1 mode=$2 data=${3:-} config log
  port=$((port + 1))
  if [ -z "$data" ]; then
    data=$work/data/$server-$mode-$port
    server_data=$data
  fi
  mkdir -p "$data"
  config=$(write_config "$mode" "$data")
  log=$work/results/$server-$mode-$port.log
  if [ "$server" = reference ]; then
    docker-registry serve "$config" >"$log" 2>&1 &
  else
    REGISTRY_HTTP_ADDR=127.0.0.1:$port "$regkit" serve --config "$config" >"$log" 2>&1 &
  fi
  server_pid=$!
  local url i
  url=$(url_for "$mode")
  for i in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "$url/v2/" || true)" != 000 ]; then
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "$server exited at start ($mode)"; }
    sleep 0.1
  done
  die "$server did not answer on $url within 30 s"
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  # Gigabytes per mode otherwise pile up on the disk both servers write to.
  if [ -n "$server_data" ] && [ "$keep" = 0 ]; then rm -rf "$server_data"; fi
  server_data=""
}

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$server_pid/status"; }

# bench MODE OUTFILE ARGS...: regkit bench against the running server, JSON into OUTFILE.
bench() {
  local mode=$1 outfile=$2; shift 2
  local args=(bench "$(url_for "$mode")" --json --server-pid "$server_pid" --ca "$ca" "$@")
  case "$mode" in
    tls-htpasswd*) args+=(--user bench --password-stdin) ;;
  esac
  printf '%s\n' "$password" | "$regkit" "${args[@]}" >"$outfile" \
    || die "regkit bench failed against $(basename "$outfile" .json)"
}

# make_repos MODE N: N repositories, each holding one tiny manifest, through the API of the
# server that is running. The config blob is pushed once, then cross-mounted; the requests go
# through `jobs` curl processes in parallel, each with keep-alive over its share of the
# repositories (a repository's mount precedes its manifest within one process).
make_repos() {
  local mode=$1 n=$2 jobs=8 url cfg manifest digest i
  url=$(url_for "$mode")
  cfg=$work/repo-config.json
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$cfg"
  digest=sha256:$(sha256sum "$cfg" | cut -d' ' -f1)
  manifest=$work/repo-manifest.json
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
    "$digest" "$(stat -c %s "$cfg")" >"$manifest"
  local auth=() opts
  opts=$(printf 'cacert = "%s"\n' "$ca")
  case "$mode" in
    tls-htpasswd*) auth=(-u "bench:$password"); opts+=$(printf '\nuser = "bench:%s"' "$password") ;;
  esac
  local loc
  loc=$(curl -sf --cacert "$ca" "${auth[@]}" -X POST -D - -o /dev/null "$url/v2/catalog-0000000/blobs/uploads/" \
    | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  case "$loc" in http*) ;; *) loc=$url$loc ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -sf --cacert "$ca" "${auth[@]}" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$cfg" -o /dev/null "$loc" || die "cannot push the catalog config blob"
  # One curl config per job, one operation per request (`next`); curl keeps the connection
  # alive across operations. Per-operation options (CA, credentials) are repeated in each.
  local j
  for j in $(seq 0 $((jobs - 1))); do
    {
      for ((i = j; i < n; i += jobs)); do
        local r
        printf -v r 'catalog-%07d' "$i"
        if [ "$i" -gt 0 ]; then
          printf 'next\n%s\nurl = "%s/v2/%s/blobs/uploads/?mount=%s&from=catalog-0000000"\nrequest = "POST"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$opts" "$url" "$r" "$digest"
        fi
        printf 'next\n%s\nurl = "%s/v2/%s/manifests/v1"\nrequest = "PUT"\nheader = "Content-Type: application/vnd.oci.image.manifest.v1+json"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$opts" "$url" "$r" "$manifest"
      done
    } | sed '1d' >"$work/repos-$j.curl"
  done
  local started=$SECONDS pids=()
  for j in $(seq 0 $((jobs - 1))); do
    curl -s -K "$work/repos-$j.curl" >"$work/repos-$j.codes" &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  local good
  good=$(cat "$work"/repos-*.codes | grep -cE '^(201|202)$' || true)
  [ "$good" = $((2 * n - 1)) ] \
    || die "creating $n repositories: only $good of $((2 * n - 1)) requests succeeded (codes in $work/repos-*.codes)"
  say "created $n repositories in $((SECONDS - started)) s"
  local listed want=$((n < 100 ? n : 100))
  listed=$(curl -sf --cacert "$ca" "${auth[@]}" "$url/v2/_catalog?n=100" | jq '.repositories | length')
  [ "${listed:-0}" -ge "$want" ] || die "the catalog lists ${listed:-no} repositories, expected at least $want"
}

# --- machine limits, measured in this run -------------------------------------------------
say "measuring this machine (openssl speed ${speed_seconds}s per block size, ${dd_mib} MiB write)"
speed() { # openssl speed result for 16 KiB blocks, in MiB/s (openssl prints 1000s of bytes/s)
  openssl speed -evp "$1" -seconds "$speed_seconds" 2>/dev/null \
    | awk -v alg="$1" 'tolower($1) == tolower(alg) { v = $NF }
                       END { sub(/k$/, "", v); printf "%.0f", v * 1000 / 1048576 }'
}
sha_mib=$(speed sha256)
aes_mib=$(speed aes-128-gcm)
dd_line=$(dd if=/dev/zero of="$work/ddtest" bs=1M count="$dd_mib" conv=fdatasync 2>&1 | tail -n 1)
rm -f "$work/ddtest"
dd_secs=$(echo "$dd_line" | awk -F', ' '{ print $3 }' | awk '{ print $1 }')
dd_mibs=$(awk -v m="$dd_mib" -v s="$dd_secs" 'BEGIN { if (s > 0) printf "%.0f", m / s; else print "?" }')

# record_memory FILE IDLE_KIB: adds the server's memory to its results: resident before the
# workloads (IDLE_KIB), the peak (VmHWM) and what it still holds once they are done.
record_memory() {
  jq --arg idle "$2" --arg peak "$(kib VmHWM)" --arg after "$(kib VmRSS)" \
    '. + {idle_rss_kib: ($idle | tonumber), peak_rss_kib: ($peak | tonumber),
          after_rss_kib: ($after | tonumber)}' "$1" >"$work/results/tmp.json"
  mv "$work/results/tmp.json" "$1"
}

# --- the runs -------------------------------------------------------------------------------
# merge_runs OUT FILE...: one result from several runs of one server: the median of each
# figure, every run's figures, pushes and cleanups (per_run, pushed, cleanup, in the same
# order), the median idle and after-RSS, the highest peak; the rest as in the first run.
merge_runs() {
  local out=$1; shift
  jq -s 'def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                            else (.[length / 2 - 1] + .[length / 2]) / 2 end;
         . as $runs
         | $runs[0]
         | .figures = reduce ($runs[0].figures | paths(numbers)) as $p
             ($runs[0].figures; setpath($p; [$runs[].figures | getpath($p) // empty] | median))
         | .runs = ($runs | length)
         | .per_run = [$runs[].per_run[]?]
         | .pushed = [$runs[].pushed[]?]
         | .cleanup = [$runs[].cleanup[]?]
         | .idle_rss_kib = ([$runs[].idle_rss_kib] | median)
         | .after_rss_kib = ([$runs[].after_rss_kib] | median)
         | .peak_rss_kib = ([$runs[].peak_rss_kib] | max)' "$@" >"$out"
}

common=(--size "$size" --chunk "$chunk" --concurrency "$concurrency" --duration "$duration")
for mode in "${mode_list[@]}"; do
  for run in $(seq 1 "$runs"); do
    for server in "${servers[@]}"; do
      say "$server, $mode: standard workloads (run $run of $runs)"
      start_server "$server" "$mode"
      sleep 1
      idle=$(kib VmRSS)
      bench "$mode" "$work/results/$server-$mode-run$run.json" "${common[@]}"
      record_memory "$work/results/$server-$mode-run$run.json" "$idle"
      stop_server
    done
  done
  for server in "${servers[@]}"; do
    merge_runs "$work/results/$server-$mode.json" "$work/results/$server-$mode"-run*.json
  done
done
# Peak memory under concurrent pushes and the catalog with many repositories: TLS on, no
# auth, a fresh server each (VmHWM counts from process start).
for server in "${servers[@]}"; do
  say "$server: $parallel concurrent pushes of $parallel_size"
  start_server "$server" tls
  sleep 1
  idle=$(kib VmRSS)
  bench tls "$work/results/$server-parallel.json" --workloads parallel-push \
    --size "$parallel_size" --concurrency "$parallel"
  record_memory "$work/results/$server-parallel.json" "$idle"
  stop_server

done
# The catalog with many repositories: created once through the API of regkit serve when it
# runs (it creates them faster; otherwise the reference), then each server lists that same
# root, read only. The two servers share distribution's layout, so the tree is the same.
catalog_root=$work/data/catalog
creator=${servers[${#servers[@]} - 1]}
say "$creator: creating $repos repositories for the catalog workload"
start_server "$creator" tls "$catalog_root"
make_repos tls "$repos"
stop_server
for server in "${servers[@]}"; do
  say "$server: _catalog?n=100 latency with $repos repositories"
  start_server "$server" tls "$catalog_root"
  bench tls "$work/results/$server-catalog.json" --workloads catalog --duration "$duration"
  stop_server
done
[ "$keep" = 1 ] || rm -rf "$catalog_root"

# --- BENCHMARKS.md --------------------------------------------------------------------------
# fig SERVER FILE JQ: one figure, or "—" when that server was not run.
fig() {
  local f=$work/results/$1-$2.json
  [ -f "$f" ] || { echo "—"; return; }
  jq -r "($3) // \"—\" | if type == \"number\" then (. * 100 | round / 100) else . end" "$f"
}
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", b / a; else print "—" }'
}
row() { # row LABEL FILE JQ
  local r k
  r=$(fig reference "$2" "$3")
  k=$(fig regkit "$2" "$3")
  echo "| $1 | $r | $k | $(ratio "$r" "$k") |"
}
mib() { echo "$1 / 1024 | . * 10 | round / 10"; }
{
  echo "# Benchmarks"
  echo
  echo "Written by \`bench/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Regenerate with"
  echo "\`bench/compare.sh\` (see README, section Benchmarks). Ratios are regkit / reference:"
  echo "above 1 is better for throughput and request rates, below 1 is better for CPU, memory"
  echo "and latency."
  echo
  echo "- Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
  echo "- Versions: $("$regkit" --version), $(docker-registry --version 2>/dev/null | head -n 1 || echo 'docker-registry not run'), $(openssl version)"
  echo "- Settings: blob $size, chunk $chunk, $concurrency connections, ${duration} per rate workload, median of $runs alternating run(s); servers: ${servers[*]}; certificates by $CERT_TOOL"
  echo
  echo "## This machine's limits (same run)"
  echo
  echo "| limit | value |"
  echo "|---|---|"
  echo "| SHA-256, one core (\`openssl speed -evp sha256\`, 16 KiB blocks) | $sha_mib MiB/s |"
  echo "| AES-128-GCM, one core (\`openssl speed -evp aes-128-gcm\`, 16 KiB blocks) | $aes_mib MiB/s |"
  echo "| ${dd_mib} MiB write with fdatasync (\`dd conv=fdatasync\`) | $dd_mibs MiB/s |"
  for mode in "${mode_list[@]}"; do
    echo
    case "$mode" in
      plain) echo "## Plain HTTP" ;;
      tls) echo "## TLS" ;;
      tls-htpasswd5) echo "## TLS + htpasswd (bcrypt cost 5)" ;;
      tls-htpasswd10) echo "## TLS + htpasswd (bcrypt cost 10)" ;;
    esac
    echo
    echo "| figure | reference | regkit | ratio |"
    echo "|---|---|---|---|"
    row "monolithic push, MiB/s" "$mode" .figures.push_monolithic.mib_per_s
    row "monolithic push, server CPU-s/GiB" "$mode" .figures.push_monolithic.server_cpu_s_per_gib
    row "chunked push ($chunk), MiB/s" "$mode" .figures.push_chunked.mib_per_s
    row "chunked push, server CPU-s/GiB" "$mode" .figures.push_chunked.server_cpu_s_per_gib
    row "pull, MiB/s" "$mode" .figures.pull.mib_per_s
    row "pull, server CPU-s/GiB" "$mode" .figures.pull.server_cpu_s_per_gib
    row "pull, client (regkit bench) CPU-s/GiB" "$mode" '.figures.pull | if .client_cpu_s then .client_cpu_s / (.bytes / 1073741824) else null end'
    row "manifest HEAD, req/s ($concurrency connections)" "$mode" .figures.manifest_head.requests_per_s
    row "manifest HEAD, p99 ms" "$mode" .figures.manifest_head.p99_ms
    row "manifest GET, req/s" "$mode" .figures.manifest_get.requests_per_s
    row "tags list, p50 ms" "$mode" .figures.tags_list.p50_ms
    row "catalog (few repositories), p50 ms" "$mode" .figures.catalog.p50_ms
    row "idle RSS, MiB" "$mode" "$(mib .idle_rss_kib)"
    row "peak RSS (VmHWM), MiB" "$mode" "$(mib .peak_rss_kib)"
    row "RSS after the workloads, MiB" "$mode" "$(mib .after_rss_kib)"
  done
  echo
  echo "## Memory under $parallel concurrent $parallel_size pushes (TLS)"
  echo
  echo "| figure | reference | regkit | ratio |"
  echo "|---|---|---|---|"
  row "aggregate push, MiB/s" parallel .figures.parallel_push.mib_per_s
  row "server CPU-s/GiB" parallel .figures.parallel_push.server_cpu_s_per_gib
  row "idle RSS, MiB" parallel "$(mib .idle_rss_kib)"
  row "peak RSS (VmHWM), MiB" parallel "$(mib .peak_rss_kib)"
  row "RSS after the pushes, MiB" parallel "$(mib .after_rss_kib)"
  echo
  echo "## \`_catalog?n=100\` with $repos repositories (TLS)"
  echo
  echo "Each request asks for the page after the previous one (following \`Link\`), back to the"
  echo "first page at the end, so deep pages count as much as the first."
  echo
  echo "| figure | reference | regkit | ratio |"
  echo "|---|---|---|---|"
  row "pages fetched in ${duration}" catalog .figures.catalog.requests
  row "p50 ms" catalog .figures.catalog.p50_ms
  row "p99 ms" catalog .figures.catalog.p99_ms
  row "server CPU-s over the workload" catalog .figures.catalog.server_cpu_s
} >"$out.tmp"
mv "$out.tmp" "$out"
say "wrote $out"
