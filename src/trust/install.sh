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
# Directories --uninstall never removes, even when empty; any other directory it leaves
# empty on the way from a removed file up to the root goes (the rule of `regkit trust
# uninstall`).
KEEP_DIRS='@KEEP_DIRS@'
# containerd's config_path advice, as `regkit trust install` words it: with no readable
# config.toml, for a config of version 2 (containerd 1.x) and of version 3 (containerd 2.x).
# Empty when containerd is not selected.
CONTAINERD_NOTE_NONE='@CONTAINERD_NOTE_NONE@'
CONTAINERD_NOTE_1='@CONTAINERD_NOTE_1@'
CONTAINERD_NOTE_2='@CONTAINERD_NOTE_2@'

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

# Removes directory $1 (relative to the root) and then its parents while they are empty,
# stopping at the root and at KEEP_DIRS. A dry run removes nothing and says what would go: a
# directory counts as empty when all it holds is listed in `gone` (the files uninstall would
# remove, and the directories found so far), as `regkit trust uninstall --dry-run` judges it.
prune() {
  d=$1
  while [ -n "$d" ] && [ "$d" != . ] && [ "$d" != / ]; do
    case $NL$KEEP_DIRS$NL in *"$NL$d$NL"*) return 0 ;; esac
    if [ "$dry_run" = 0 ]; then
      rmdir "$root/$d" 2>/dev/null || return 0
      say "removed empty directory $root/$d"
    else
      case $NL$gone in
        *"$NL$d$NL"*) ;;
        *)
          only_gone "$d" || return 0
          say "would remove empty directory $root/$d"
          gone=$gone$d$NL
          ;;
      esac
    fi
    d=$(dirname "$d")
  done
}

# True when directory $1 (relative to the root) holds nothing but what `gone` lists. A name
# with a newline in it never matches, so its directory counts as not empty.
only_gone() (
  [ -d "$root/$1" ] || exit 1
  entries=$(ls -A "$root/$1") || exit 1
  IFS=$NL
  for e in $entries; do
    case $NL$gone in *"$NL$1/$e$NL"*) ;; *) exit 1 ;; esac
  done
)

# The k3s file's text, or nothing when it does not exist (the trailing x keeps final newlines).
k3s_read() {
  if [ -e "$k3s_yaml" ]; then
    k3s_text=$(cat "$k3s_yaml" && printf x)
    k3s_text=${k3s_text%x}
  else
    k3s_text=
  fi
}

# Runs the in-place editor ($1: install or uninstall) on k3s_text for REGISTRY. Sets k3s_code:
# 0 new text in k3s_text, 10 nothing to do, 11 another value (in k3s_out), 12 not editable
# (why in k3s_out), 13 nothing left.
k3s_run() {
  k3s_out=$(printf '%s' "$k3s_text" |
    awk -v mode="$1" -v reg="$REGISTRY" -v ca="$K3S_CA_FILE" -v force="$force" \
      -f "$here/k3s_edit.awk" && printf ':0' || printf ':%s' "$?")
  k3s_code=${k3s_out##*:}
  k3s_out=${k3s_out%:*}
  case $k3s_code in
    0) k3s_text=$k3s_out ;;
    13) k3s_text= ;;
    10 | 11 | 12) k3s_out=${k3s_out%"$NL"} ;;
    *) say "install.sh: awk failed on $k3s_yaml" >&2; exit 1 ;;
  esac
}

# Why the file cannot be edited here, and what to do by hand ($1).
k3s_not_editable() {
  say "$k3s_out; this script edits the file in place to keep its comments and layout and" \
    "cannot do so here: $1 by hand, or rewrite that part in block style"
}

# Runs k3s_$1_entry once per k3s entry, with REGISTRY and K3S_CA_FILE set.
k3s_each() {
  IFS=$NL
  for entry in $K3S_ENTRIES; do
    IFS=$old_ifs
    REGISTRY=${entry%% *}
    K3S_CA_FILE=${entry#* }
    case $1 in
      merge) k3s_merge_entry ;;
      unmerge) k3s_unmerge_entry ;;
      pin) k3s_pin_entry ;;
    esac
  done
  IFS=$old_ifs
}

# Merges every entry into the file's text before anything is written; refuses (exit 1) when
# an entry holds another ca_file (unless --force) or the file cannot be edited in place.
# Sets k3s_change: create, update or unchanged.
k3s_plan_install() {
  k3s_read
  k3s_change=unchanged
  k3s_each merge
}

k3s_merge_entry() {
  k3s_run install
  case $k3s_code in
    0) if [ -e "$k3s_yaml" ]; then k3s_change=update; else k3s_change=create; fi ;;
    11)
      say "install.sh: $k3s_yaml already exists with different content," \
        "configs.\"$REGISTRY\".tls.ca_file is \"$k3s_out\", not \"$K3S_CA_FILE\"" \
        "(pass --force to replace it)" >&2
      exit 1
      ;;
    12)
      say "install.sh: $k3s_yaml: $(k3s_not_editable \
        "add configs.\"$REGISTRY\".tls.ca_file: $K3S_CA_FILE")" >&2
      exit 1
      ;;
  esac
}

# Writes k3s_text over the file atomically: a new file is 0600, an existing one keeps its mode.
k3s_write() {
  mkdir -p "$(dirname "$k3s_yaml")"
  tmp=$(dirname "$k3s_yaml")/.regkit-$$.tmp
  if [ -e "$k3s_yaml" ]; then
    cp -p "$k3s_yaml" "$tmp"
    printf '%s' "$k3s_text" >"$tmp"
  else
    (umask 077 && printf '%s' "$k3s_text" >"$tmp")
  fi
  mv -f "$tmp" "$k3s_yaml"
}

k3s_install() {
  case $k3s_change in
    unchanged) say "already in place $k3s_yaml (k3s)"; return 0 ;;
  esac
  would "$k3s_change" "$k3s_yaml (k3s)"
  [ "$dry_run" = 1 ] || k3s_write
}

# Takes each entry's ca_file out, in turn; an entry that is not ours, or whose CA copy was
# kept because it is another CA, stays and is reported.
k3s_uninstall() {
  if [ ! -e "$k3s_yaml" ]; then
    say "not present $k3s_yaml (k3s)"
    return 0
  fi
  k3s_read
  changed=0
  k3s_kept=0
  k3s_each unmerge
  [ "$k3s_kept" = 0 ] || status=1
  if [ "$changed" = 0 ]; then
    [ "$k3s_kept" = 1 ] || say "not present $k3s_yaml (k3s)"
  elif [ -z "$(printf '%s' "$k3s_text" | tr -d ' \t\n')" ]; then
    would remove "$k3s_yaml (k3s)"
    [ "$dry_run" = 1 ] || rm -f "$k3s_yaml"
  else
    would update "$k3s_yaml (k3s)"
    [ "$dry_run" = 1 ] || k3s_write
  fi
}

k3s_unmerge_entry() {
  case $NL$kept_files in
    *"$NL${K3S_CA_FILE#/}$NL"*)
      say "left alone $k3s_yaml: its CA copy for $REGISTRY is another one" >&2
      k3s_kept=1
      return 0
      ;;
  esac
  k3s_run uninstall
  case $k3s_code in
    0 | 13) changed=1 ;;
    11)
      say "left alone $k3s_yaml: its ca_file for $REGISTRY is \"$k3s_out\"" >&2
      k3s_kept=1
      ;;
    12)
      say "left alone $k3s_yaml: $(k3s_not_editable \
        "remove configs.\"$REGISTRY\".tls.ca_file ($K3S_CA_FILE)")" >&2
      k3s_kept=1
      ;;
  esac
}

# Lists in `pinned` the CA copies whose registries.yaml entry cannot be edited here: the
# entry stays, so the copy it points at stays too.
k3s_plan_uninstall() {
  pinned=
  [ -e "$k3s_yaml" ] || return 0
  k3s_read
  k3s_each pin
}

k3s_pin_entry() {
  k3s_run uninstall
  [ "$k3s_code" != 12 ] || pinned=$pinned${K3S_CA_FILE#/}$NL
}

# containerd reads hosts.toml only when its config sets config_path: say so unless it does.
containerd_note() {
  [ -n "$CONTAINERD_NOTE_NONE" ] || return 0
  cfg=$root/etc/containerd/config.toml
  if [ ! -f "$cfg" ]; then
    say "note: $CONTAINERD_NOTE_NONE"
  elif grep -Eq "^[[:space:]]*config_path[[:space:]]*=[[:space:]]*[\"'](.*:)?/etc/containerd/certs\.d/?[\"':]" "$cfg"; then
    return 0
  elif grep -Eq '^version[[:space:]]*=[[:space:]]*([3-9]|[1-9][0-9]+)[[:space:]]*(#.*)?$' "$cfg"; then
    say "note: $CONTAINERD_NOTE_2"
  else
    say "note: $CONTAINERD_NOTE_1"
  fi
}

old_ifs=$IFS
IFS=$NL
if [ "$uninstall" = 0 ]; then
  # First pass: refuse before writing anything if a file holds something else, or if
  # registries.yaml cannot take the entries.
  for rel in $FILES; do
    dst=$root/$rel
    if [ -e "$dst" ] && ! cmp -s "$here/files/$rel" "$dst" && [ "$force" = 0 ]; then
      say "install.sh: $dst already exists with different content (pass --force to replace it)" >&2
      exit 1
    fi
  done
  IFS=$old_ifs
  [ -z "$K3S_ENTRIES" ] || k3s_plan_install
  IFS=$NL
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
  [ -z "$K3S_ENTRIES" ] || k3s_install
else
  # Directories where a CA was left because it is another one: the config beside it (and
  # k3s's key pointing at it) belong to that other install and stay too.
  kept_dirs=
  kept_files=
  removed=
  pinned=
  IFS=$old_ifs
  [ -z "$K3S_ENTRIES" ] || k3s_plan_uninstall
  IFS=$NL
  for rel in $FILES; do
    dst=$root/$rel
    case $NL$kept_dirs in
      *"$NL$(dirname "$rel")$NL"*) case $rel in *.crt) ;; *) dst=kept ;; esac ;;
    esac
    case $NL$pinned in *"$NL$rel$NL"*) dst=pinned ;; esac
    if [ "$dst" = kept ]; then
      say "left alone $root/$rel: the CA beside it is another one" >&2
      status=1
    elif [ "$dst" = pinned ]; then
      say "left alone $root/$rel: registries.yaml still points at it" >&2
      status=1
    elif [ ! -e "$dst" ]; then
      say "not present $dst"
    elif cmp -s "$here/files/$rel" "$dst"; then
      would remove "$dst"
      case $rel in usr/local/share/ca-certificates/*) changed_system=1 ;; esac
      [ "$dry_run" = 1 ] || rm -f "$dst"
      removed=$removed$rel$NL
    else
      say "left alone $dst: it is not the file this bundle installs" >&2
      kept_dirs=$kept_dirs$(dirname "$rel")$NL
      kept_files=$kept_files$rel$NL
      status=1
    fi
  done
  IFS=$old_ifs
  [ -z "$K3S_ENTRIES" ] || k3s_uninstall
  gone=$removed
  IFS=$NL
  for rel in $removed; do
    IFS=$old_ifs
    prune "$(dirname "$rel")"
  done
  IFS=$old_ifs
fi

if [ "$changed_system" = 1 ] && [ "$dry_run" = 0 ]; then
  if [ -z "$root" ] && command -v update-ca-certificates >/dev/null 2>&1; then
    # After a removal only --fresh drops the old symlinks and the bundle entry.
    if [ "$uninstall" = 1 ]; then update-ca-certificates --fresh; else update-ca-certificates; fi
  else
    say "run update-ca-certificates on the node to rebuild the system store"
  fi
fi
if [ "$uninstall" = 0 ]; then
  containerd_note
  [ -z "$K3S_ENTRIES" ] || say "note: k3s reads registries.yaml at start: restart k3s (or k3s-agent)"
fi
exit "$status"
