//! The tool rows of the matrix, all over OpenSSH 9.2 with the ed25519 key: `git clone` and
//! `git push` (GIT_SSH_COMMAND), `scp -O` (the old scp protocol: a remote `scp -t` / `scp -f`
//! command) and `sftp` (the `sftp` subsystem, served by the --sftp-server program).

use std::fs;
use std::path::Path;
use std::process::Command;

use super::clients::Key;
use super::support::{self, USER};
use super::{
    cmd, give_to_remote, must, run, Ctx, Input, Job, Outcome, Run, BIG, BIG_TIMEOUT, CASE_TIMEOUT,
};

const GIT: &str = "/usr/bin/git";
const SCP: &str = "/usr/bin/scp";
const SFTP: &str = "/usr/bin/sftp";

pub const GIT_ROW: &str = "git 2.39 (ssh 9.2)";
pub const SCP_ROW: &str = "scp -O (9.2)";
pub const SFTP_ROW: &str = "sftp (9.2)";

/// The bare repository, the file to download, both given to the remote account.
pub fn prepare(ctx: &Ctx) {
    let repo = ctx.remote.join("repo.git");
    let seed = ctx.dir.join("seed");
    must(
        Command::new(GIT)
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&repo),
    );
    must(
        Command::new(GIT)
            .args(["init", "-q", "-b", "main"])
            .arg(&seed),
    );
    fs::write(seed.join("README"), "seeded by interop_server\n").unwrap();
    must(git(ctx).arg("-C").arg(&seed).args(["add", "README"]));
    must(
        git(ctx)
            .arg("-C")
            .arg(&seed)
            .args(["commit", "-q", "-m", "seed"]),
    );
    must(
        git(ctx)
            .arg("-C")
            .arg(&seed)
            .arg("push")
            .arg("-q")
            .arg(&repo)
            .arg("main"),
    );
    fs::copy(&ctx.big, ctx.remote.join("download.bin")).unwrap();
    give_to_remote(ctx, &ctx.remote);
}

/// Local git with a private HOME and identity, and no system config.
fn git(ctx: &Ctx) -> Command {
    let mut c = Command::new(GIT);
    c.env("HOME", &ctx.dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "user.name=matrix",
            "-c",
            "user.email=matrix@localhost",
            "-c",
            "safe.directory=*",
        ]);
    c
}

/// OpenSSH options shared by GIT_SSH_COMMAND, scp and sftp (no -p: scp and sftp take -P).
fn ssh_opts(ctx: &Ctx) -> Vec<String> {
    let srv = &ctx.srv[0];
    [
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        &format!("UserKnownHostsFile={}", srv.known_hosts.display()),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-i",
        &ctx.key(Key::Ed25519, "").display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn url(ctx: &Ctx) -> String {
    format!(
        "ssh://{USER}@127.0.0.1:{}{}",
        ctx.srv[0].server.port,
        ctx.remote.join("repo.git").display()
    )
}

fn git_ssh(ctx: &Ctx) -> Command {
    let mut c = git(ctx);
    c.env(
        "GIT_SSH_COMMAND",
        format!("{} {}", support::SSH, ssh_opts(ctx).join(" ")),
    );
    c
}

fn ok(r: &Run, what: &str) -> Result<(), String> {
    if r.code == Some(0) && !r.timed_out {
        Ok(())
    } else {
        Err(format!("{what}: {}", r.describe()))
    }
}

fn same_file(a: &Path, sha: &str) -> Result<(), String> {
    let data = fs::read(a).map_err(|e| format!("{}: {e}", a.display()))?;
    if data.len() as u64 == BIG && super::sha256_hex(&data) == sha {
        Ok(())
    } else {
        Err(format!(
            "{} differs from the 64 MiB original ({} bytes)",
            a.display(),
            data.len()
        ))
    }
}

fn via_setsid(c: Command) -> Command {
    let mut s = cmd(c.get_program());
    s.args(c.get_args());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            s.env(k, v);
        }
    }
    s
}

pub fn jobs<'a>() -> Vec<Job<'a>> {
    let job = |row: &'static str,
               col: &'static str,
               heavy: bool,
               f: fn(&Ctx) -> Result<String, String>| Job {
        row: row.to_owned(),
        col,
        heavy,
        run: Box::new(move |ctx: &Ctx| match f(ctx) {
            Ok(n) => Outcome::Ok(n),
            Err(e) => Outcome::Fail(e),
        }),
    };
    vec![
        job(GIT_ROW, "clone", false, git_clone),
        job(GIT_ROW, "push", false, git_push),
        job(SCP_ROW, "upload 64MiB", true, scp_upload),
        job(SCP_ROW, "download 64MiB", true, scp_download),
        job(SFTP_ROW, "put+get 64MiB", true, sftp_put_get),
        job(SFTP_ROW, "ls/rename/rm", false, sftp_ops),
    ]
}

fn git_clone(ctx: &Ctx) -> Result<String, String> {
    let dest = ctx.scratch("clone");
    let mut c = git_ssh(ctx);
    c.args(["clone", "-q", &url(ctx)]).arg(&dest);
    ok(&run(via_setsid(c), Input::Null, CASE_TIMEOUT), "git clone")?;
    let readme =
        fs::read_to_string(dest.join("README")).map_err(|e| format!("cloned README: {e}"))?;
    if readme != "seeded by interop_server\n" {
        return Err(format!("cloned README: {readme:?}"));
    }
    Ok(String::new())
}

fn git_push(ctx: &Ctx) -> Result<String, String> {
    let work = ctx.scratch("push");
    let mut c = git_ssh(ctx);
    c.args(["clone", "-q", &url(ctx)]).arg(&work);
    ok(
        &run(via_setsid(c), Input::Null, CASE_TIMEOUT),
        "git clone before push",
    )?;
    fs::write(work.join("pushed.txt"), "pushed over ssh\n").unwrap();
    must(git(ctx).arg("-C").arg(&work).args(["add", "pushed.txt"]));
    must(
        git(ctx)
            .arg("-C")
            .arg(&work)
            .args(["commit", "-q", "-m", "pushed"]),
    );
    let head = must(git(ctx).arg("-C").arg(&work).args(["rev-parse", "HEAD"]));
    let mut c = git_ssh(ctx);
    c.arg("-C")
        .arg(&work)
        .args(["push", "-q", "origin", "HEAD:refs/heads/matrix-push"]);
    ok(&run(via_setsid(c), Input::Null, CASE_TIMEOUT), "git push")?;
    let remote = must(
        git(ctx)
            .arg("--git-dir")
            .arg(ctx.remote.join("repo.git"))
            .args(["rev-parse", "refs/heads/matrix-push"]),
    );
    if remote.trim() != head.trim() {
        return Err(format!(
            "pushed {head:?}, the server's repository has {remote:?}"
        ));
    }
    Ok(String::new())
}

fn scp(ctx: &Ctx, from: &str, to: &str) -> Run {
    let mut c = cmd(SCP);
    c.args(["-O", "-q", "-P", &ctx.srv[0].server.port.to_string()])
        .args(ssh_opts(ctx))
        .args([from, to]);
    run(c, Input::Null, BIG_TIMEOUT)
}

fn scp_upload(ctx: &Ctx) -> Result<String, String> {
    let dest = ctx.remote.join("scp-up.bin");
    let r = scp(
        ctx,
        &ctx.big.display().to_string(),
        &format!("{USER}@127.0.0.1:{}", dest.display()),
    );
    ok(&r, "scp -O upload")?;
    same_file(&dest, &ctx.big_sha)?;
    let _ = fs::remove_file(&dest);
    Ok(String::new())
}

fn scp_download(ctx: &Ctx) -> Result<String, String> {
    let dest = ctx.scratch("scp-down");
    let src = format!(
        "{USER}@127.0.0.1:{}",
        ctx.remote.join("download.bin").display()
    );
    let r = scp(ctx, &src, &dest.display().to_string());
    ok(&r, "scp -O download")?;
    same_file(&dest, &ctx.big_sha)?;
    let _ = fs::remove_file(&dest);
    Ok(String::new())
}

fn sftp(ctx: &Ctx, batch: &str) -> Run {
    let file = ctx.scratch("sftp-batch");
    fs::write(&file, batch).unwrap();
    let mut c = cmd(SFTP);
    c.args(["-q", "-P", &ctx.srv[0].server.port.to_string()])
        .args(ssh_opts(ctx))
        .arg("-b")
        .arg(&file)
        .arg(format!("{USER}@127.0.0.1"));
    run(c, Input::Null, BIG_TIMEOUT)
}

fn sftp_put_get(ctx: &Ctx) -> Result<String, String> {
    let up = ctx.remote.join("sftp-up.bin");
    let down = ctx.scratch("sftp-down");
    let r = sftp(
        ctx,
        &format!(
            "put {} {}\nget {} {}\n",
            ctx.big.display(),
            up.display(),
            up.display(),
            down.display()
        ),
    );
    ok(&r, "sftp put/get")?;
    same_file(&up, &ctx.big_sha)?;
    same_file(&down, &ctx.big_sha)?;
    let _ = fs::remove_file(&up);
    let _ = fs::remove_file(&down);
    Ok(String::new())
}

fn sftp_ops(ctx: &Ctx) -> Result<String, String> {
    let d = ctx.remote.display();
    let batch = format!(
        "mkdir {d}/sftp-dir\nput {readme} {d}/sftp-dir/a.txt\nrename {d}/sftp-dir/a.txt {d}/sftp-dir/b.txt\nls -1 {d}/sftp-dir\nrm {d}/sftp-dir/b.txt\nrmdir {d}/sftp-dir\n",
        readme = ctx.dir.join("seed/README").display()
    );
    let r = sftp(ctx, &batch);
    ok(&r, "sftp mkdir/put/rename/ls/rm/rmdir")?;
    // Listing lines are those not echoing a batch command ("sftp> ...").
    let out = r.stdout();
    let listed: Vec<&str> = out.lines().filter(|l| !l.starts_with("sftp>")).collect();
    if !listed.iter().any(|l| l.ends_with("/b.txt")) || listed.iter().any(|l| l.ends_with("/a.txt"))
    {
        return Err(format!("sftp ls after rename: {}", r.describe()));
    }
    if ctx.remote.join("sftp-dir").exists() {
        return Err("sftp rmdir left the directory".into());
    }
    Ok(String::new())
}
