"""cc_static_archive: one .a holding every static library a cc target links (our code, every
generated kernel, the one Halide runtime), plus a text file with the remaining system link flags
(Abseil, zlib, dl, pthread) for users who link with plain gcc/g++."""

def _cc_static_archive_impl(ctx):
    libs = []
    flags = []
    for dep in ctx.attr.deps:
        for li in dep[CcInfo].linking_context.linker_inputs.to_list():
            for lib in li.libraries:
                a = lib.pic_static_library or lib.static_library
                if a and a not in libs:
                    libs.append(a)
            for f in li.user_link_flags:
                if f not in flags:
                    flags.append(f)
    out = ctx.actions.declare_file(ctx.attr.archive_name)
    mri = ctx.actions.declare_file(ctx.label.name + ".mri")
    ctx.actions.write(
        mri,
        "create %s\n" % out.path + "".join(["addlib %s\n" % a.path for a in libs]) + "save\nend\n",
    )
    ctx.actions.run_shell(
        inputs = libs + [mri],
        outputs = [out],
        command = "ar -M < %s" % mri.path,
        mnemonic = "StaticArchive",
        progress_message = "Merging %d static libraries into %s" % (len(libs), out.short_path),
    )
    linkopts = ctx.actions.declare_file(ctx.attr.archive_name + ".linkopts")
    ctx.actions.write(linkopts, " ".join(flags) + "\n")
    return [DefaultInfo(files = depset([out, linkopts]), runfiles = ctx.runfiles(files = [out, linkopts]))]

cc_static_archive = rule(
    implementation = _cc_static_archive_impl,
    attrs = {
        "archive_name": attr.string(mandatory = True),
        "deps": attr.label_list(providers = [CcInfo]),
    },
)
