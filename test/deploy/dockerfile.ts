/**
 * A small Dockerfile reader (enough for ours: no heredocs) and a .dockerignore matcher with
 * Docker's semantics (moby/patternmatcher: Go filepath.Match plus `**`, `!` exceptions, last
 * match wins, a path is excluded when it or a parent directory matches).
 */

export interface Instruction {
  /** Upper-case instruction name: FROM, RUN, COPY, ... */
  cmd: string
  /** The rest of the line, continuations joined. */
  args: string
  /** 1-based line where the instruction starts. */
  line: number
}

export interface Stage {
  /** The FROM image with build arguments substituted. */
  image: string
  name: string | undefined
  instructions: Instruction[]
}

export interface Dockerfile {
  directives: Record<string, string>
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>
  stages: Stage[]
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n')
  const directives: Record<string, string> = {}
  let i = 0
  // Parser directives: `# key=value` lines at the very top.
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]!)
    if (!m) break
    directives[m[1]!.toLowerCase()] = m[2]!
  }
  const instructions: Instruction[] = []
  let current: { text: string; line: number } | undefined
  for (; i < lines.length; i++) {
    const raw = lines[i]!
    const trimmed = raw.trim()
    if (trimmed.startsWith('#')) continue // comments, also inside continuations
    if (!current && trimmed === '') continue
    const continues = /\\\s*$/.test(raw)
    const part = continues ? raw.replace(/\\\s*$/, '') : raw
    if (current) current.text += ' ' + part.trim()
    else current = { text: part.trim(), line: i + 1 }
    if (!continues) {
      const m = /^(\S+)\s*(.*)$/s.exec(current.text)!
      instructions.push({ cmd: m[1]!.toUpperCase(), args: m[2]!.trim(), line: current.line })
      current = undefined
    }
  }
  if (current) throw new Error(`line ${current.line}: continuation at end of file`)

  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.cmd === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`)
      stages.push({ image: substitute(m[1]!, globalArgs), name: m[2], instructions: [] })
    } else if (stages.length === 0) {
      if (ins.cmd !== 'ARG') throw new Error(`line ${ins.line}: ${ins.cmd} before the first FROM`)
      const [name, value] = splitAssignment(ins.args)
      globalArgs[name] = value ?? ''
    } else {
      stages[stages.length - 1]!.instructions.push(ins)
    }
  }
  return { directives, globalArgs, stages }
}

function splitAssignment(s: string): [string, string | undefined] {
  const eq = s.indexOf('=')
  return eq < 0 ? [s.trim(), undefined] : [s.slice(0, eq).trim(), unquote(s.slice(eq + 1).trim())]
}

function unquote(s: string): string {
  return /^".*"$/.test(s) || /^'.*'$/.test(s) ? s.slice(1, -1) : s
}

export function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!
    return vars[name] ?? ''
  })
}

/** KEY=VALUE pairs of ENV or LABEL (quoted values allowed); also the legacy `ENV KEY VALUE`. */
export function keyValues(args: string): Record<string, string> {
  const out: Record<string, string> = {}
  const re = /([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g
  let m: RegExpExecArray | null
  let any = false
  while ((m = re.exec(args))) {
    out[m[1]!] = unquote(m[2]!)
    any = true
  }
  if (!any) {
    const legacy = /^(\S+)\s+(.*)$/.exec(args)
    if (legacy) out[legacy[1]!] = legacy[2]!
  }
  return out
}

/** The JSON array of an exec-form instruction, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined
  try {
    const v: unknown = JSON.parse(args)
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined
  } catch {
    return undefined
  }
}

/** Flags (--from=build) and paths of a COPY. */
export function copyArgs(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const parts = args.split(/\s+/).filter(Boolean)
  const flags: Record<string, string> = {}
  while (parts[0]?.startsWith('--')) {
    const [k, v] = parts.shift()!.slice(2).split('=')
    flags[k!] = v ?? ''
  }
  const dest = parts.pop()!
  return { flags, sources: parts, dest }
}

// ---- .dockerignore -----------------------------------------------------------------------------

interface IgnoreRule {
  re: RegExp
  exclude: boolean
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = []
  for (let line of text.split('\n')) {
    line = line.trim()
    if (!line || line.startsWith('#')) continue
    const exclude = !line.startsWith('!')
    let p = exclude ? line : line.slice(1).trim()
    p = p.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\/\.\//g, '/')
    if (p === '' || p === '.') continue
    rules.push({ re: patternToRegExp(p), exclude })
  }
  return rules
}

function patternToRegExp(p: string): RegExp {
  let re = ''
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!
    if (c === '*') {
      if (p[i + 1] === '*') {
        // `**/` matches any number of directories, also none; a final `**` matches everything.
        if (p[i + 2] === '/') {
          re += '(?:.*/)?'
          i += 2
        } else {
          re += '.*'
          i += 1
        }
      } else {
        re += '[^/]*'
      }
    } else if (c === '?') {
      re += '[^/]'
    } else if (c === '[') {
      const end = p.indexOf(']', i)
      if (end < 0) throw new Error(`unclosed [ in .dockerignore pattern ${p}`)
      re += '[' + p.slice(i + 1, end).replace(/^!/, '^') + ']'
      i = end
    } else if (c === '\\') {
      re += '\\' + (p[++i] ?? '\\')
    } else {
      re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&')
    }
  }
  return new RegExp(`^${re}$`)
}

/** True when the context path (relative, with /) is left out of the build context. */
export function isIgnored(path: string, rules: IgnoreRule[]): boolean {
  const parts = path.split('/')
  let ignored = false
  for (const rule of rules) {
    let matched = false
    for (let n = 1; n <= parts.length && !matched; n++) matched = rule.re.test(parts.slice(0, n).join('/'))
    if (matched) ignored = rule.exclude
  }
  return ignored
}
