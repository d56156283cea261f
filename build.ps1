<#
.SYNOPSIS
  Thin wrapper over the dotnet commands in README.md (no logic lives only here).
.EXAMPLE
  ./build.ps1 -Task test
#>
param(
    [ValidateSet('build', 'test', 'bench', 'pack')]
    [string]$Task = 'build',
    [string]$Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
switch ($Task) {
    'build' { dotnet build Spark.Native.sln -c $Configuration }
    'test'  { dotnet test Spark.Native.sln -c $Configuration }
    'bench' {
        foreach ($suite in 'gemm', 'forward', 'train-step') {
            dotnet run -c $Configuration --project benchmarks/Spark.Benchmarks -- $suite --json "benchmarks/results/latest-$suite.json"
            if ($LASTEXITCODE -ne 0) { break }
        }
    }
    'pack'  { dotnet pack src/Spark.Native -c $Configuration -o artifacts }
}
exit $LASTEXITCODE
