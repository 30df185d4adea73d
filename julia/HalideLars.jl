# HalideLars: Julia bindings over the halide_lars C ABI (include/halide_lars/lars_c.h), one `ccall` wrapper per
# C function, mirroring the header mechanically. UNTESTED here (no Julia on the build machines):
# //tests/abi:abi_surface_test checks that every function of the header is bound below with the
# same number of arguments. Options are not mirrored: `options_buffer` fills a lars_options_t
# from the library's own option table (lars_option_info), so new options need no change here.
#
#   using .HalideLars
#   opt = HalideLars.LARS(Dict("w" => w); lr=0.1, momentum=0.9)   # w::Vector{Float32}
#   HalideLars.step!(opt, Dict("w" => gw))
module HalideLars

const libhalide_lars = get(ENV, "HALIDE_LARS_LIB", "libhalide_lars.so")

# --- DLPack ----------------------------------------------------------------------------------
struct DLDevice
    device_type::Cint
    device_id::Int32
end

struct DLDataType
    code::UInt8
    bits::UInt8
    lanes::UInt16
end

struct DLTensor
    data::Ptr{Cvoid}
    device::DLDevice
    ndim::Int32
    dtype::DLDataType
    shape::Ptr{Int64}
    strides::Ptr{Int64}
    byte_offset::UInt64
end

struct DLManagedTensor
    dl_tensor::DLTensor
    manager_ctx::Ptr{Cvoid}
    deleter::Ptr{Cvoid}
end

# lars_param_state_t (lars_import_state): bitsandbytes-layout state in host memory.
struct ParamState
    name::Cstring
    step::Int64
    kind::Int32            # 0 fp32, 1 blockwise 8-bit, 2 per-tensor 8-bit
    block_size::Int32
    numel::Int64
    momentum::Ptr{Float32}
    codes::Ptr{UInt8}
    absmax::Ptr{Float32}
    absmax_count::Int64
    qmap::Ptr{Float32}
    gnorm_vec::Ptr{Float32}
    unorm_vec::Ptr{Float32}
end

const kDLCPU = Cint(1)
const kDLCUDA = Cint(2)
const kDLFloat = UInt8(2)

# --- lars_option_info_t: the library's option table ------------------------------------------
struct OptionInfo
    name::Cstring
    values::Cstring      # enum options: the names in index order, comma-separated
    expected::Cstring
    doc::Cstring
    offset::Int64        # offsetof(lars_options_t, name)
    default_value::Cdouble
    type::Int32          # 0 Float64, 1 Int32, 2 Int64, 3 Bool (Int32), 4 enum (Int32 index)
end

# --- Raw bindings: one per C function -----------------------------------------------------------
lars_abi_version() = ccall((:lars_abi_version, libhalide_lars), Int32, ())
lars_version() = unsafe_string(ccall((:lars_version, libhalide_lars), Cstring, ()))
lars_last_error() = unsafe_string(ccall((:lars_last_error, libhalide_lars), Cstring, ()))
lars_option_count() = ccall((:lars_option_count, libhalide_lars), Int32, ())
lars_option_info(index, out::Ref{OptionInfo}) =
    ccall((:lars_option_info, libhalide_lars), Cint, (Int32, Ref{OptionInfo}), index, out)
lars_options_size() = ccall((:lars_options_size, libhalide_lars), Int64, ())
lars_options_default(o::Vector{UInt8}) =
    ccall((:lars_options_default, libhalide_lars), Cint, (Ptr{UInt8},), o)
lars_validate_options(o::Vector{UInt8}) =
    ccall((:lars_validate_options, libhalide_lars), Cint, (Ptr{UInt8},), o)
lars_create(o::Vector{UInt8}, out::Ref{Ptr{Cvoid}}) =
    ccall((:lars_create, libhalide_lars), Cint, (Ptr{UInt8}, Ref{Ptr{Cvoid}}), o, out)
lars_destroy(opt::Ptr{Cvoid}) = ccall((:lars_destroy, libhalide_lars), Cint, (Ptr{Cvoid},), opt)
lars_add_param_group(opt, group::Ref{Int32}) =
    ccall((:lars_add_param_group, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Int32}), opt, group)
lars_set_group_option(opt, group, key, value) =
    ccall((:lars_set_group_option, libhalide_lars), Cint, (Ptr{Cvoid}, Int32, Cstring, Cdouble),
          opt, group, key, value)
lars_set_group_option_str(opt, group, key, value) =
    ccall((:lars_set_group_option_str, libhalide_lars), Cint,
          (Ptr{Cvoid}, Int32, Cstring, Cstring), opt, group, key, value)
lars_add_param(opt, name, param, grad, group) =
    ccall((:lars_add_param, libhalide_lars), Cint,
          (Ptr{Cvoid}, Cstring, Ptr{DLTensor}, Ptr{DLTensor}, Int32), opt, name, param, grad, group)
lars_set_grad(opt, name, grad) =
    ccall((:lars_set_grad, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Ptr{DLTensor}),
          opt, name, grad)
lars_override(opt, name, key, value) =
    ccall((:lars_override, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Cstring, Cdouble),
          opt, name, key, value)
lars_override_str(opt, name, key, value) =
    ccall((:lars_override_str, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Cstring, Cstring),
          opt, name, key, value)
lars_step(opt, stream) =
    ccall((:lars_step, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{Cvoid}), opt, stream)
lars_set_shard(opt, name, offset, full_numel) =
    ccall((:lars_set_shard, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Int64, Int64),
          opt, name, offset, full_numel)
lars_layout_flat(count, numels, alignment, offsets, total::Ref{Int64}) =
    ccall((:lars_layout_flat, libhalide_lars), Cint,
          (Int64, Ptr{Int64}, Int64, Ptr{Int64}, Ref{Int64}), count, numels, alignment, offsets,
          total)
lars_plan_flat(opt, count, numels, groups, offsets, total::Ref{Int64}) =
    ccall((:lars_plan_flat, libhalide_lars), Cint,
          (Ptr{Cvoid}, Int64, Ptr{Int64}, Ptr{Int32}, Ptr{Int64}, Ref{Int64}), opt, count, numels,
          groups, offsets, total)
lars_add_flat_params(opt, params, grads, count, names, offsets, numels, groups) =
    ccall((:lars_add_flat_params, libhalide_lars), Cint,
          (Ptr{Cvoid}, Ptr{DLTensor}, Ptr{DLTensor}, Int64, Ptr{Cstring}, Ptr{Int64}, Ptr{Int64},
           Ptr{Int32}), opt, params, grads, count, names, offsets, numels, groups)
lars_last_step_pipelines(opt, n::Ref{Int64}) =
    ccall((:lars_last_step_pipelines, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Int64}), opt, n)
# The CPU kernels' thread budget (0: HL_NUM_THREADS, else OMP_NUM_THREADS, else every CPU the
# process may use); see lars_c.h.
lars_set_num_threads(opt, n::Integer) =
    ccall((:lars_set_num_threads, libhalide_lars), Cint, (Ptr{Cvoid}, Int32), opt, n)
lars_get_num_threads(opt, n::Ref{Int32}) =
    ccall((:lars_get_num_threads, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Int32}), opt, n)
lars_tensor_state_kind(options, numel::Integer, kind::Ref{Int32}) =
    ccall((:lars_tensor_state_kind, libhalide_lars), Cint, (Ptr{Cvoid}, Int64, Ref{Int32}),
          options, numel, kind)
lars_step_tensor(options, param, grad, momentum, codes, absmax, step::Integer, grad_scale::Real,
                 stream, stepped::Ref{Int32}) =
    ccall((:lars_step_tensor, libhalide_lars), Cint,
          (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Int64, Cdouble, Ptr{Cvoid}, Ref{Int32}),
          options, param, grad, momentum, codes, absmax, step, grad_scale, stream, stepped)
lars_set_grad_scale(opt, scale::Real) =
    ccall((:lars_set_grad_scale, libhalide_lars), Cint, (Ptr{Cvoid}, Cdouble), opt, scale)
lars_get_grad_scale(opt, scale::Ref{Float64}) =
    ccall((:lars_get_grad_scale, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Float64}), opt, scale)
lars_partials_size(opt, n::Ref{Int64}) =
    ccall((:lars_partials_size, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Int64}), opt, n)
lars_step_begin(opt, partials, n, stream) =
    ccall((:lars_step_begin, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{Float64}, Int64, Ptr{Cvoid}),
          opt, partials, n, stream)
lars_step_finish(opt, partials, n, stream) =
    ccall((:lars_step_finish, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{Float64}, Int64, Ptr{Cvoid}),
          opt, partials, n, stream)
lars_step_begin_tensor(opt, partials, stream) =
    ccall((:lars_step_begin_tensor, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{DLTensor}, Ptr{Cvoid}),
          opt, partials, stream)
lars_step_finish_tensor(opt, partials, stream) =
    ccall((:lars_step_finish_tensor, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{DLTensor}, Ptr{Cvoid}),
          opt, partials, stream)
lars_param_step(opt, name, step::Ref{Int64}) =
    ccall((:lars_param_step, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Ref{Int64}),
          opt, name, step)
lars_param_skipped_steps(opt, name, out::Ref{Int64}) =
    ccall((:lars_param_skipped_steps, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Ref{Int64}),
          opt, name, out)
lars_get_momentum(opt, name, out, n) =
    ccall((:lars_get_momentum, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Ptr{Float32}, Csize_t),
          opt, name, out, n)
lars_state_size(opt, bytes::Ref{Int64}) =
    ccall((:lars_state_size, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Int64}), opt, bytes)
lars_param_count(opt, n::Ref{Int64}) =
    ccall((:lars_param_count, libhalide_lars), Cint, (Ptr{Cvoid}, Ref{Int64}), opt, n)
lars_state_versions(opt, n, steps, versions) =
    ccall((:lars_state_versions, libhalide_lars), Cint, (Ptr{Cvoid}, Int64, Ptr{Int64}, Ptr{UInt64}),
          opt, n, steps, versions)
lars_state_count(opt, name, count::Ref{Int32}) =
    ccall((:lars_state_count, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring, Ref{Int32}),
          opt, name, count)
lars_export_state(opt, name, index, key::Ref{Cstring}, out::Ref{Ptr{DLManagedTensor}}) =
    ccall((:lars_export_state, libhalide_lars), Cint,
          (Ptr{Cvoid}, Cstring, Int32, Ref{Cstring}, Ref{Ptr{DLManagedTensor}}),
          opt, name, index, key, out)
lars_import_state(opt, count, states) =
    ccall((:lars_import_state, libhalide_lars), Cint, (Ptr{Cvoid}, Int64, Ptr{ParamState}),
          opt, count, states)
lars_save_state(opt, buffer, capacity, size::Ref{Csize_t}) =
    ccall((:lars_save_state, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ref{Csize_t}),
          opt, buffer, capacity, size)
lars_load_state(opt, data, size) =
    ccall((:lars_load_state, libhalide_lars), Cint, (Ptr{Cvoid}, Ptr{UInt8}, Csize_t),
          opt, data, size)
lars_save_state_file(opt, path) =
    ccall((:lars_save_state_file, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring), opt, path)
lars_load_state_file(opt, path) =
    ccall((:lars_load_state_file, libhalide_lars), Cint, (Ptr{Cvoid}, Cstring), opt, path)

# --- Errors: lars_status_t -> Julia exceptions ------------------------------------------------
struct LarsError <: Exception
    code::Cint
    msg::String
end
Base.showerror(io::IO, e::LarsError) = print(io, "halide_lars error ", e.code, ": ", e.msg)

function check(status::Cint)
    status == 0 && return nothing
    msg = lars_last_error()
    status == 3 && throw(ArgumentError(msg))  # INVALID_ARGUMENT
    status == 5 && throw(KeyError(msg))       # NOT_FOUND
    throw(LarsError(status, msg))
end

# --- A small high-level API over Array{Float32} (and CuArray pointers via `pointer`) ----------
mutable struct LARS
    handle::Ptr{Cvoid}
    params::Dict{String,Any}
    shapes::Dict{String,Vector{Int64}}
end

function dltensor(a::AbstractArray{Float32}, shape::Vector{Int64}; device=kDLCPU, id=0)
    DLTensor(Ptr{Cvoid}(pointer(a)), DLDevice(device, id), Int32(1), DLDataType(kDLFloat, 32, 1),
             pointer(shape), Ptr{Int64}(C_NULL), UInt64(0))
end

# The option table: name => (info, enum value names).
function option_table()
    table = Dict{String,Tuple{OptionInfo,Vector{String}}}()
    for i in 0:lars_option_count()-1
        info = Ref{OptionInfo}()
        check(lars_option_info(Int32(i), info))
        values = unsafe_string(info[].values)
        table[unsafe_string(info[].name)] = (info[], isempty(values) ? String[] : split(values, ","))
    end
    table
end

# A lars_options_t (as bytes) with the library's defaults and `options` (any option of the
# table by name; enum options by value name, e.g. trust_mode="classic").
function options_buffer(options)
    table = option_table()
    buf = zeros(UInt8, lars_options_size())
    check(lars_options_default(buf))
    GC.@preserve buf for (key, value) in options
        haskey(table, String(key)) || throw(ArgumentError("unknown option $(key)"))
        info, values = table[String(key)]
        p = pointer(buf) + info.offset
        if info.type == 0
            unsafe_store!(Ptr{Cdouble}(p), Float64(value))
        elseif info.type == 2
            unsafe_store!(Ptr{Int64}(p), Int64(value))
        elseif info.type == 4 && !(value isa Integer)
            i = findfirst(==(String(value)), values)
            i === nothing && throw(ArgumentError("$(key): $(value), expected $(unsafe_string(info.expected))"))
            unsafe_store!(Ptr{Int32}(p), Int32(i - 1))
        else
            unsafe_store!(Ptr{Int32}(p), Int32(value))
        end
    end
    buf
end

function LARS(params::Dict{String,<:AbstractArray{Float32}}; lr, options...)
    o = options_buffer(pairs((; lr=lr, options...)))
    h = Ref{Ptr{Cvoid}}(C_NULL)
    check(lars_create(o, h))
    opt = LARS(h[], Dict{String,Any}(), Dict{String,Vector{Int64}}())
    finalizer(x -> lars_destroy(x.handle), opt)
    for (name, a) in params
        opt.params[name] = a
        opt.shapes[name] = Int64[length(a)]
        t = Ref(dltensor(a, opt.shapes[name]))
        GC.@preserve a check(lars_add_param(opt.handle, name, t, Ptr{DLTensor}(C_NULL), Int32(0)))
    end
    opt
end

function step!(opt::LARS, grads::Dict{String,<:AbstractArray{Float32}})
    refs = Any[]
    for name in keys(opt.params)
        if haskey(grads, name)
            g = grads[name]
            shape = Int64[length(g)]
            t = Ref(dltensor(g, shape))
            push!(refs, (g, shape, t))
            check(lars_set_grad(opt.handle, name, t))
        else
            check(lars_set_grad(opt.handle, name, Ptr{DLTensor}(C_NULL)))
        end
    end
    GC.@preserve refs check(lars_step(opt.handle, C_NULL))
    nothing
end

function save_state(opt::LARS)
    n = Ref{Csize_t}(0)
    check(lars_save_state(opt.handle, Ptr{UInt8}(C_NULL), 0, n))
    buf = Vector{UInt8}(undef, n[])
    check(lars_save_state(opt.handle, buf, n[], n))
    buf
end

# The live state of a CPU parameter under bitsandbytes' names ("state1", "absmax1", "qmap1",
# "unorm_vec", ...): Julia arrays over the optimizer's memory (writing them changes the state);
# each keeps its export (and the memory) alive until garbage-collected.
function state(opt::LARS, name::String)
    count = Ref{Int32}(0)
    check(lars_state_count(opt.handle, name, count))
    out = Dict{String,Any}()
    for i in 0:count[]-1
        key = Ref{Cstring}(C_NULL)
        m = Ref{Ptr{DLManagedTensor}}(C_NULL)
        check(lars_export_state(opt.handle, name, Int32(i), key, m))
        t = unsafe_load(m[]).dl_tensor
        T = t.dtype.code == UInt8(1) ? UInt8 : Float32
        a = unsafe_wrap(Array, Ptr{T}(t.data + t.byte_offset), unsafe_load(t.shape))
        managed = m[]
        finalizer(_ -> ccall(unsafe_load(managed).deleter, Cvoid, (Ptr{DLManagedTensor},), managed), a)
        out[unsafe_string(key[])] = a
    end
    out
end

load_state!(opt::LARS, data::Vector{UInt8}) = check(lars_load_state(opt.handle, data, length(data)))

end # module
