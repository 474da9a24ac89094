/* The floor under a bench-small training step: every OpenBLAS product one 256-row pack
 * runs (forward and backward, 8 layers, the vocabulary head, causal attention in blocks
 * of 64 queries), timed on their own with warm caches, single-threaded as the engine runs
 * them. flow-training-benchmark's step, divided by the packs each thread runs, against
 * this total says how much of a step is not sgemm.
 *
 *     cc -O2 Benchmarks/sgemm/pack_products.c -o /tmp/pack_products -lopenblas
 *     OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX /tmp/pack_products
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *A,*B,*C;
double T(int m,int n,int k,int ta,int tb,int reps){
  double t0=now();
  for(int r=0;r<reps;r++) cblas_sgemm(CblasRowMajor,ta?CblasTrans:CblasNoTrans,tb?CblasTrans:CblasNoTrans,m,n,k,1,A,ta?m:k,B,tb?k:n,0,C,n);
  return (now()-t0)/reps;
}
int main(){
  A=malloc(4L*8192*8192/4);B=malloc(4L*8192*1408);C=malloc(4L*8192*1408);
  for(long i=0;i<8192L*2048;i++)A[i]=1e-3f*(i%7);
  for(long i=0;i<8192L*1408;i++){B[i]=1e-3f*(i%5);C[i]=0;}
  double total=0,flops=0,t;
  /* name, m, n, k, transposed a, transposed b, calls per pack */
  #define ADD(name,m,n,k,ta,tb,count) t=T(m,n,k,ta,tb,20)*(count); total+=t; flops+=2.0*m*n*k*(count); printf("%-10s %5d %5d %5d x%3d  %6.2f ms  %.0f GF/s\n",name,m,n,k,(int)(count),t*1e3,2.0*m*n*k*(count)/t/1e9);
  ADD("q",256,512,512,0,1,8) ADD("kv",256,256,512,0,1,16) ADD("o",256,512,512,0,1,8)
  ADD("gateup",256,1408,512,0,1,16) ADD("down",256,512,1408,0,1,8)
  ADD("down dx",256,1408,512,0,0,8) ADD("gu dx",256,512,1408,0,0,16) ADD("o dx",256,512,512,0,0,8)
  ADD("q dx",256,512,512,0,0,7) ADD("kv dx",256,512,256,0,0,14)
  ADD("head",256,8192,512,0,1,1) ADD("head dx",256,512,8192,0,0,1)
  for(int b=1;b<=4;b++){ int seen=64*b;
    ADD("att S",64,seen,64,0,1,64) ADD("att PV",64,64,seen,0,0,64)
    ADD("att dV",seen,64,64,1,0,64) ADD("att dS",64,seen,64,0,1,64) ADD("att dQ",64,64,seen,0,0,64) ADD("att dK",seen,64,64,1,0,64) }
  printf("pack total %.1f ms, %.1f GFLOP, %.0f GF/s\n",total*1e3,flops/1e9,flops/total/1e9);
}
