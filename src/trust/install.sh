#!/bin/sh
# Trusts the private CA of the registry at @REGISTRIES@ on this node, for: @CLIENTS@.
# Written by `regkit trust bundle`; needs only POSIX sh, cmp and awk, not regkit.
#
# Usage: sh install.sh [--root DIR] [--dry-run] [--force] [--uninstall]
#   --root DIR   work under DIR instead of / (a staging tree or a mounted image)
#   --dry-run    print what would change and change nothing
#   --force      replace files that hold something else
#   --uninstall  remove what this script installs (files that still match only)
# Running it again changes nothing. Exit: 0 done, 1 refused or left something, 2 usage.
set -eu
# Registry names such as [::1]:5000 must never be read as glob patterns.
set -f

# Paths relative to the root, one a line; each is shipped under files/ beside this script.
FILES='@FILES@'
# One k3s registries.yaml entry a line: the address, a space, its ca_file value. Empty when
# k3s is not selected. The k3s functions below work on one entry: REGISTRY and K3S_CA_FILE.
K3S_ENTRIES='@K3S_ENTRIES@'
REGISTRY=
K3S_CA_FILE=

NL='
'
usage() {
  printf 'install.sh: %s (see --help)\n' "$1" >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
root=/
dry_run=0
force=0
uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --root)
      [ $# -ge 2 ] || usage "--root needs a directory"
      root=$2
      shift 2
      ;;
    --root=*) root=${1#--root=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    --force) force=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) usage "unknown argument: $1" ;;
  esac
done
[ -d "$root" ] || usage "root $root is not a directory"
# "/" becomes "", so "$root/etc/..." is "/etc/...".
root=${root%/}
k3s_yaml=$root/etc/rancher/k3s/registries.yaml
status=0
changed_system=0
# Set once a dry run "would create" registries.yaml: later entries would then update it.
k3s_planned=0

say() { printf '%s\n' "$*"; }
# Reports an action: "would create X" on a dry run, "created X" otherwise.
would() {
  if [ "$dry_run" = 1 ]; then say "would $1 $2"; else say "${1%e}ed $2"; fi
}

# Copies $1 to $2 through a temporary file in the same directory, then renames it.
put() {
  mkdir -p "$(dirname "$2")"
  tmp=$(dirname "$2")/.regkit-$$.tmp
  cp "$1" "$tmp"
  chmod "$3" "$tmp"
  mv -f "$tmp" "$2"
}

# The registry's entry, as regkit writes it, indented by $1.
k3s_entry() {
  printf '%s"%s":\n%s  tls:\n%s    ca_file: %s\n' "$1" "$REGISTRY" "$1" "$1" "$K3S_CA_FILE"
}

# True when the file mentions the registry as a mapping key (quoted or not).
k3s_has_key() {
  awk -v r="$REGISTRY" '{ s = $0; sub(/^[ \t]+/, "", s)
    if (index(s, r ":") == 1 || index(s, "\"" r "\":") == 1 || index(s, "'\''" r "'\'':") == 1) f = 1 }
    END { exit !f }' "$k3s_yaml"
}

# Decides what to do with registries.yaml: create, already, insert, append or manual.
k3s_action() {
  if [ ! -e "$k3s_yaml" ]; then
    if [ "$k3s_planned" = 1 ]; then echo insert; else echo create; fi
  elif grep -F -q -e "$K3S_CA_FILE" "$k3s_yaml"; then echo already
  elif k3s_has_key; then echo manual
  elif grep -q '^configs:[[:space:]]*$' "$k3s_yaml"; then echo insert
  elif grep -q '^configs:' "$k3s_yaml"; then echo manual
  else echo append
  fi
}

k3s_manual() {
  say "left alone $k3s_yaml: it already configures $REGISTRY in a way this script" \
    "does not edit; add under configs:" >&2
  k3s_entry '  ' >&2
  status=1
}

k3s_install() {
  action=$(k3s_action)
  case $action in
    already) say "already in place $k3s_yaml (k3s)"; return 0 ;;
    manual) k3s_manual; return 0 ;;
  esac
  if [ "$action" = create ]; then would create "$k3s_yaml (k3s)"; else would update "$k3s_yaml (k3s)"; fi
  if [ "$dry_run" = 1 ]; then k3s_planned=1; return 0; fi
  mkdir -p "$(dirname "$k3s_yaml")"
  tmp=$(dirname "$k3s_yaml")/.regkit-$$.tmp
  case $action in
    create)
      (umask 077 && { echo 'configs:'; k3s_entry '  '; } >"$tmp")
      ;;
    insert)
      # Match the indentation of the entries already under configs (YAML needs siblings
      # aligned); two spaces when there are none.
      ind=$(awk 'f && /^[ ]*[^ #]/ { match($0, /^[ ]*/); print substr($0, 1, RLENGTH); exit }
        /^configs:[[:space:]]*$/ { f = 1 }' "$k3s_yaml")
      [ -n "$ind" ] || ind='  '
      block=$(k3s_entry "$ind")
      cp -p "$k3s_yaml" "$tmp"
      # The entry goes last in the configs section: before the next top-level key, or at
      # the end of the file.
      awk -v block="$block" '
        function flush() { if (inside && !done) { print block; done = 1 } inside = 0 }
        /^configs:[[:space:]]*$/ { print; inside = 1; next }
        inside && /^[^ #]/ { flush() }
        { print }
        END { flush() }' "$k3s_yaml" >"$tmp"
      ;;
    append)
      cp -p "$k3s_yaml" "$tmp"
      { cat "$k3s_yaml"
        [ -z "$(tail -c 1 "$k3s_yaml")" ] || echo
        echo 'configs:'
        k3s_entry '  '
      } >"$tmp"
      ;;
  esac
  mv -f "$tmp" "$k3s_yaml"
}

k3s_uninstall() {
  if [ ! -e "$k3s_yaml" ] || ! grep -F -q -e "$K3S_CA_FILE" "$k3s_yaml"; then
    say "not present $k3s_yaml (k3s)"
    return 0
  fi
  # Drop the registry's entry when it is exactly the three lines install adds (key, tls:,
  # ca_file) with nothing else under it; then drop a "configs:" left with no entries.
  tmp=$(dirname "$k3s_yaml")/.regkit-$$.tmp
  cp -p "$k3s_yaml" "$tmp"
  if ! awk -v r="$REGISTRY" -v ca="$K3S_CA_FILE" '
    function indent(s) { match(s, /^[ ]*/); return RLENGTH }
    function body(s) { sub(/^[ ]+/, "", s); sub(/[ ]+$/, "", s); return s }
    { line[NR] = $0 }
    END {
      q = "'\''"
      for (i = 1; i <= NR; i++) {
        k = body(line[i]); d = indent(line[i])
        if (!done && (k == r ":" || k == "\"" r "\":" || k == q r q ":") &&
            body(line[i + 1]) == "tls:" && indent(line[i + 1]) > d &&
            (body(line[i + 2]) == "ca_file: " ca || body(line[i + 2]) == "ca_file: \"" ca "\"" ||
             body(line[i + 2]) == "ca_file: " q ca q) && indent(line[i + 2]) > indent(line[i + 1]) &&
            (i + 3 > NR || body(line[i + 3]) == "" || indent(line[i + 3]) <= d)) {
          done = 1; i += 2; continue
        }
        out[++n] = line[i]
      }
      if (!done) exit 1
      for (j = 1; j <= n; j++) {
        if (out[j] ~ /^configs:[ ]*$/) {
          m = j + 1
          while (m <= n && body(out[m]) == "") m++
          if (m > n || indent(out[m]) == 0) continue
        }
        kept++; print out[j]
      }
    }' "$k3s_yaml" >"$tmp"; then
    rm -f "$tmp"
    say "left alone $k3s_yaml: its $REGISTRY entry holds more than regkit added;" \
      "remove its tls.ca_file ($K3S_CA_FILE) by hand" >&2
    status=1
    return 0
  fi
  if [ -z "$(tr -d ' \n' <"$tmp")" ]; then
    rm -f "$tmp"
    would remove "$k3s_yaml (k3s)"
    [ "$dry_run" = 1 ] || rm -f "$k3s_yaml"
  else
    would update "$k3s_yaml (k3s)"
    if [ "$dry_run" = 1 ]; then rm -f "$tmp"; else mv -f "$tmp" "$k3s_yaml"; fi
  fi
}

# Leaves the entry when uninstall kept its CA copy (another CA): the key is not ours.
k3s_uninstall_kept() {
  case $NL$kept_files in
    *"$NL${K3S_CA_FILE#/}$NL"*)
      say "left alone $k3s_yaml: its CA copy for $REGISTRY is another one" >&2
      ;;
    *) k3s_uninstall ;;
  esac
}

# Installs ($1 = install) or uninstalls each k3s entry in turn.
k3s_each() {
  IFS=$NL
  for entry in $K3S_ENTRIES; do
    IFS=$old_ifs
    REGISTRY=${entry%% *}
    K3S_CA_FILE=${entry#* }
    if [ "$1" = install ]; then k3s_install; else k3s_uninstall_kept; fi
  done
  IFS=$old_ifs
}

old_ifs=$IFS
IFS=$NL
if [ "$uninstall" = 0 ]; then
  # First pass: refuse before writing anything if a file holds something else.
  for rel in $FILES; do
    dst=$root/$rel
    if [ -e "$dst" ] && ! cmp -s "$here/files/$rel" "$dst" && [ "$force" = 0 ]; then
      say "install.sh: $dst already exists with different content (pass --force to replace it)" >&2
      exit 1
    fi
  done
  for rel in $FILES; do
    dst=$root/$rel
    if [ -e "$dst" ] && cmp -s "$here/files/$rel" "$dst"; then
      say "already in place $dst"
      continue
    fi
    if [ -e "$dst" ]; then would replace "$dst"; else would create "$dst"; fi
    case $rel in usr/local/share/ca-certificates/*) changed_system=1 ;; esac
    [ "$dry_run" = 1 ] || put "$here/files/$rel" "$dst" 644
  done
  IFS=$old_ifs
  k3s_each install
else
  # Directories where a CA was left because it is another one: the config beside it (and
  # k3s's key pointing at it) belong to that other install and stay too.
  kept_dirs=
  kept_files=
  for rel in $FILES; do
    dst=$root/$rel
    case $NL$kept_dirs in
      *"$NL$(dirname "$rel")$NL"*) case $rel in *.crt) ;; *) dst=kept ;; esac ;;
    esac
    if [ "$dst" = kept ]; then
      say "left alone $root/$rel: the CA beside it is another one" >&2
      status=1
    elif [ ! -e "$dst" ]; then
      say "not present $dst"
    elif cmp -s "$here/files/$rel" "$dst"; then
      would remove "$dst"
      case $rel in usr/local/share/ca-certificates/*) changed_system=1 ;; esac
      if [ "$dry_run" = 0 ]; then
        rm -f "$dst"
        # The per-registry directory goes when it is empty; shared parents stay.
        case $rel in
          usr/local/share/ca-certificates/*) ;;
          *) rmdir "$(dirname "$dst")" 2>/dev/null || true ;;
        esac
      fi
    else
      say "left alone $dst: it is not the file this bundle installs" >&2
      kept_dirs=$kept_dirs$(dirname "$rel")$NL
      kept_files=$kept_files$rel$NL
      status=1
    fi
  done
  IFS=$old_ifs
  k3s_each uninstall
fi

if [ "$changed_system" = 1 ] && [ "$dry_run" = 0 ]; then
  if [ -z "$root" ] && command -v update-ca-certificates >/dev/null 2>&1; then
    # After a removal only --fresh drops the old symlinks and the bundle entry.
    if [ "$uninstall" = 1 ]; then update-ca-certificates --fresh; else update-ca-certificates; fi
  else
    say "run update-ca-certificates on the node to rebuild the system store"
  fi
fi
if [ -n "$K3S_ENTRIES" ] && [ "$uninstall" = 0 ]; then
  say "k3s reads registries.yaml at start: restart k3s (or k3s-agent)"
fi
exit "$status"
