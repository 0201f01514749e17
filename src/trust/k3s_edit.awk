# Edits k3s's registries.yaml in place, line by line, for the bundle's install.sh: the same
# algorithm as regkit's src/trust/k3s_text.rs, so both give the same bytes. POSIX awk.
# Unlike regkit, it does not parse the file as YAML: a file that is invalid outside the lines
# it reads (a syntax error, a duplicate key) is edited, where regkit refuses it.
#
#   awk -f k3s_edit.awk -v mode=install|uninstall -v reg=HOST:PORT -v ca=CA_FILE -v force=0|1
#
# Reads the file on standard input. Exit status and standard output:
#   0   the new file text
#   10  nothing to do (install: already set; uninstall: not present)
#   11  the key holds another value, printed
#   12  the file cannot be edited in place: the reason, printed
#   13  uninstall: nothing but white space is left (remove the file)

{ L[++n] = $0 }

function fail(i, msg) {
  if (i) print "line " i ": " msg; else print msg
  exit 12
}
function indent(s,   k) {
  k = 0
  while (substr(s, k + 1, 1) == " ") k++
  return k
}
function ltrim(s) { sub(/^[ \t]+/, "", s); return s }
function rtrim(s) { sub(/[ \t]+$/, "", s); return s }
function is_content(s,   t) {
  t = ltrim(s)
  return t != "" && substr(t, 1, 1) != "#"
}
function content(i) { return i != marker && is_content(L[i]) }
function is_marker(s,   c) {
  if (substr(s, 1, 3) != "---" && substr(s, 1, 3) != "...") return 0
  c = substr(s, 4, 1)
  return c == "" || c == " " || c == "\t"
}
function is_list_item(s,   t) {
  t = s
  sub(/^ +/, "", t)
  return t == "-" || substr(t, 1, 2) == "- "
}
function is_empty_value(v) {
  v = rtrim(ltrim(v))
  return v == "" || substr(v, 1, 1) == "#"
}
function sp(k,   s) {
  s = ""
  while (k-- > 0) s = s " "
  return s
}
# A mapping key line: sets KEY (unquoted) and VAL (the text after the colon).
function key_of(s,   rest, c, inner, e, i, m, after) {
  rest = s
  sub(/^ +/, "", rest)
  if (rest == "") return 0
  c = substr(rest, 1, 1)
  if (c == "\"" || c == SQ) {
    inner = substr(rest, 2)
    e = index(inner, c)
    if (!e) return 0
    KEY = substr(inner, 1, e - 1)
    after = substr(inner, e + 1)
    sub(/^ +/, "", after)
  } else {
    if (index("[]{}#&*!|>%@`?,:", c)) return 0
    if (is_list_item(rest)) return 0
    m = length(rest)
    e = 0
    for (i = 1; i <= m; i++) {
      if (substr(rest, i, 1) == ":" && (i == m || substr(rest, i + 1, 1) == " ")) { e = i; break }
    }
    if (!e) return 0
    KEY = rtrim(substr(rest, 1, e - 1))
    if (index(KEY, " #")) return 0
    after = substr(rest, e)
  }
  if (substr(after, 1, 1) != ":") return 0
  after = substr(after, 2)
  if (after != "" && substr(after, 1, 1) != " ") return 0
  VAL = after
  return 1
}
# A one-line scalar: quotes taken off, a trailing comment dropped.
function scalar(v,   c, inner, e) {
  v = rtrim(ltrim(v))
  c = substr(v, 1, 1)
  if (c == "\"" || c == SQ) {
    inner = substr(v, 2)
    e = index(inner, c)
    return e ? substr(inner, 1, e - 1) : inner
  }
  if (c == "#") return ""
  e = index(v, " #")
  if (e) v = substr(v, 1, e - 1)
  return rtrim(v)
}
function value_problem(v,   c, plain, e) {
  v = rtrim(ltrim(v))
  if (v == "") return ""
  plain = v
  e = index(plain, " #")
  if (e) plain = substr(plain, 1, e - 1)
  plain = rtrim(plain)
  c = substr(v, 1, 1)
  if (c == "|" || c == ">") return "a block scalar (| or >)"
  if (c == "&") return "an anchor (&)"
  if (c == "*") return "an alias (*)"
  if (c == "!") return "a tag (!)"
  if (c == "{" && substr(plain, length(plain)) != "}") return "a flow mapping ({) continued on the next line"
  if (c == "[" && substr(plain, length(plain)) != "]") return "a flow sequence ([) continued on the next line"
  if ((c == "\"" || c == SQ) && !index(substr(v, 2), c)) return "a quoted string continued on the next line"
  return ""
}
function find_top(name,   i) {
  for (i = 1; i <= n; i++) if (content(i) && indent(L[i]) == 0 && key_of(L[i]) && KEY == name) return i
  return 0
}
# The lines below key line k: sets B_START, B_END (exclusive), B_CHILD (-1: none), B_LAST (0: none).
function block(k,   own, i, s, d) {
  own = indent(L[k])
  B_START = k + 1
  B_END = n + 1
  B_CHILD = -1
  B_LAST = 0
  for (i = B_START; i <= n; i++) {
    if (!content(i)) continue
    s = L[i]
    d = indent(s)
    if (d <= own) {
      if (B_CHILD < 0 && d == own && is_list_item(s)) fail(i, "is a list item where a mapping was expected")
      B_END = i
      break
    }
    if (B_CHILD >= 0 && d < B_CHILD) fail(i, "is indented less than the line starting its block")
    if (B_CHILD < 0 || d == B_CHILD) {
      if (!key_of(s)) fail(i, "is not a `key: value` line where a mapping key was expected")
      B_CHILD = d
    }
    B_LAST = i
  }
}
# The block of a key line that must hold a mapping written below it.
function section(k, path) {
  key_of(L[k])
  if (!is_empty_value(VAL)) fail(k, path " has its value on the same line (" rtrim(ltrim(VAL)) "), not as a block below it")
  block(k)
}
function check_values(from, to,   i, p) {
  for (i = from; i < to; i++) {
    if (!content(i) || !key_of(L[i])) continue
    if (KEY == "<<") fail(i, "is a merge key (<<)")
    p = value_problem(VAL)
    if (p != "") fail(i, KEY " holds " p)
  }
}
function find_key(from, to, child, name,   i) {
  if (child < 0) return 0
  for (i = from; i < to; i++) if (content(i) && indent(L[i]) == child && key_of(L[i]) && KEY == name) return i
  return 0
}
function ca_value(k,   i) {
  for (i = k + 1; i <= n; i++) if (content(i)) break
  if (i <= n && indent(L[i]) > indent(L[k])) fail(k, "ca_file's value continues on the next line")
  key_of(L[k])
  return scalar(VAL)
}
function insert_after(k, s,   i) {
  for (i = n; i > k; i--) L[i + 1] = L[i]
  L[k + 1] = s
  n++
}
function del(k,   i) {
  for (i = k; i < n; i++) L[i] = L[i + 1]
  delete L[n]
  n--
}
function render(   i) {
  for (i = 1; i <= n; i++) print L[i]
  exit 0
}
function check_file(   i, s, t, seen) {
  for (i = 1; i <= n; i++) if (index(L[i], "\r")) fail(0, "has Windows line endings (CRLF); convert it with dos2unix first")
  seen = 0
  for (i = 1; i <= n; i++) {
    s = L[i]
    if (is_content(s)) {
      t = s
      sub(/[^ \t].*$/, "", t)
      if (index(t, "\t")) fail(i, "is indented with a tab (YAML indents with spaces)")
    }
    if (substr(s, 1, 1) == "%") fail(i, "is a YAML directive (%)")
    if (is_marker(s)) {
      if (!seen && !marker && rtrim(s) == "---") { marker = i; continue }
      fail(i, "starts or ends a YAML document (--- or ...); k3s reads one")
    }
    if (!is_content(s)) continue
    if (!seen && indent(s) != 0) fail(i, "the top-level keys are indented; they must start in column 0")
    seen = 1
    if (indent(s) == 0 && !key_of(s)) fail(i, "is not a `key: value` line (only block-style YAML is edited)")
  }
}

END {
  SQ = sprintf("%c", 39)
  marker = 0
  check_file()
  c0 = find_top("configs")
  if (mode == "install") {
    if (!c0) {
      insert_after(n, "configs:")
      insert_after(n, "  \"" reg "\":")
      insert_after(n, "    tls:")
      insert_after(n, "      ca_file: " ca)
      render()
    }
    section(c0, "configs")
    cs = B_START; ce = B_END; cc = B_CHILD; cl = B_LAST
    check_values(cs, ce)
    e = cc >= 0 ? cc : 2
    en = find_key(cs, ce, cc, reg)
    if (!en) {
      at = cl ? cl : c0
      insert_after(at, sp(e) "\"" reg "\":")
      insert_after(at + 1, sp(2 * e) "tls:")
      insert_after(at + 2, sp(3 * e) "ca_file: " ca)
      render()
    }
    section(en, "configs.\"" reg "\"")
    es = B_START; ee = B_END; ec = B_CHILD; el = B_LAST
    c = ec >= 0 ? ec : 2 * e
    tl = find_key(es, ee, ec, "tls")
    if (!tl) {
      at = el ? el : en
      insert_after(at, sp(c) "tls:")
      insert_after(at + 1, sp(2 * c - e) "ca_file: " ca)
      render()
    }
    section(tl, "configs.\"" reg "\".tls")
    ts = B_START; te = B_END; tc = B_CHILD; tlast = B_LAST
    t = tc >= 0 ? tc : 2 * c - e
    line = find_key(ts, te, tc, "ca_file")
    if (!line) {
      insert_after(tlast ? tlast : tl, sp(t) "ca_file: " ca)
      render()
    }
    current = ca_value(line)
    if (current == ca) exit 10
    if (current != "" && force != 1) { print current; exit 11 }
    L[line] = sp(t) "ca_file: " ca
    render()
  }
  if (!c0) exit 10
  section(c0, "configs")
  check_values(B_START, B_END)
  en = find_key(B_START, B_END, B_CHILD, reg)
  if (!en) exit 10
  section(en, "configs.\"" reg "\"")
  tl = find_key(B_START, B_END, B_CHILD, "tls")
  if (!tl) exit 10
  section(tl, "configs.\"" reg "\".tls")
  line = find_key(B_START, B_END, B_CHILD, "ca_file")
  if (!line) exit 10
  current = ca_value(line)
  if (current != ca) { print current; exit 11 }
  # Innermost first: each removal can only empty the block around it.
  del(line)
  block(tl); if (!B_LAST) del(tl)
  block(en); if (!B_LAST) del(en)
  block(c0); if (!B_LAST) del(c0)
  for (i = 1; i <= n; i++) if (rtrim(ltrim(L[i])) != "") render()
  exit 13
}
